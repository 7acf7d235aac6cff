import { useEffect, useState } from "react";
import { Navigate } from "react-router-dom";
import type { User } from "../api/types";
import { useAuth } from "../auth/AuthContext";
import { Spinner } from "../components/ui";

/** Where the gateway sends the browser after a provider sign-in: the tokens (or the error)
 * arrive in the URL fragment, which never reaches a server. */
export function OAuthFinish() {
  const { client } = useAuth();
  const [outcome, setOutcome] = useState<{ ok: boolean; error?: string } | null>(null);
  // Read once: the effect below removes them from the address bar (and may run twice).
  const [params] = useState(() => new URLSearchParams(window.location.hash.replace(/^#/, "")));

  useEffect(() => {
    window.history.replaceState(null, "", window.location.pathname); // forget the tokens
    const error = params.get("error");
    const access = params.get("access_token");
    const refresh = params.get("refresh_token");
    const user = params.get("user");
    if (error || !access || !refresh || !user) {
      setOutcome({ ok: false, error: error ?? "The sign-in did not finish. Please start again." });
      return;
    }
    try {
      client.acceptTokens({ access_token: access, refresh_token: refresh, user: JSON.parse(user) as User });
      setOutcome({ ok: true });
    } catch {
      setOutcome({ ok: false, error: "The sign-in did not finish. Please start again." });
    }
  }, [client, params]);

  if (!outcome) return <Spinner label="Finishing sign-in…" />;
  if (outcome.ok) return <Navigate to="/" replace />;
  return <Navigate to="/signin" replace state={{ error: outcome.error }} />;
}
