import { useEffect, useState } from "react";
import { useNavigate } from "react-router-dom";
import type { User } from "../api/types";
import { useAuth } from "../auth/AuthContext";
import { Spinner } from "../components/ui";

const UNFINISHED = "The sign-in did not finish. Please start again.";

/** Where the gateway sends the browser after a provider sign-in: the access token and user
 * (or the error) arrive in the URL fragment, which never reaches a server; the refresh token
 * came as an HttpOnly cookie. */
export function OAuthFinish() {
  const { client } = useAuth();
  const navigate = useNavigate();
  // Read once: the effect below removes them from the address bar (and may run twice).
  const [params] = useState(() => new URLSearchParams(window.location.hash.replace(/^#/, "")));

  useEffect(() => {
    window.history.replaceState(null, "", window.location.pathname); // forget the tokens
    const backToSignIn = (error: string) => navigate("/signin", { replace: true, state: { error } });
    const error = params.get("error");
    const access = params.get("access_token");
    const user = params.get("user");
    if (error || !access || !user) {
      void backToSignIn(error ?? UNFINISHED);
      return;
    }
    try {
      client.acceptTokens({ access_token: access, user: JSON.parse(user) as User });
    } catch {
      void backToSignIn(UNFINISHED);
      return;
    }
    void navigate("/", { replace: true });
  }, [client, navigate, params]);

  return <Spinner label="Finishing sign-in…" />;
}
