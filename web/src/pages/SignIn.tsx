import { useEffect, useId, useState, type FormEvent } from "react";
import { Navigate, useLocation, useNavigate } from "react-router-dom";
import { errorMessage } from "../api/client";
import type { ListOf, OAuthProvider } from "../api/types";
import { useAuth } from "../auth/AuthContext";
import { ErrorMessage, Tabs } from "../components/ui";

type Mode = "signin" | "register";

/** The one-time code `make run` prints as `/signin#setup=<code>`: in the fragment, so that it
 * never reaches a server log. */
function setupCodeFrom(hash: string): string {
  return new URLSearchParams(hash.replace(/^#/, "")).get("setup") ?? "";
}

export const PASSWORD_HINT = "At least 12 characters. A few unrelated words make a good one.";

export function SignIn() {
  const { client, session } = useAuth();
  const navigate = useNavigate();
  const location = useLocation();
  const from = (location.state as { from?: string; error?: string } | null)?.from ?? "/";
  const [setupCode] = useState(() => setupCodeFrom(location.hash));
  const [mode, setMode] = useState<Mode>(setupCode ? "register" : "signin");
  const [email, setEmail] = useState("");
  const [password, setPassword] = useState("");
  const [busy, setBusy] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(
    (location.state as { error?: string } | null)?.error ?? null,
  );
  const [providers, setProviders] = useState<OAuthProvider[]>([]);
  const emailId = useId();
  const passwordId = useId();
  const hintId = useId();
  const panelId = useId();

  useEffect(() => {
    const controller = new AbortController();
    client
      .request<ListOf<OAuthProvider>>("/api/v1/auth/oauth/providers", { auth: false, signal: controller.signal })
      .then((list) => setProviders(list.data))
      .catch(() => setProviders([])); // no providers to offer: password sign-in still works
    return () => controller.abort();
  }, [client]);

  if (session) return <Navigate to={from} replace />;

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setError(null);
    try {
      if (mode === "register") {
        setBusy("Creating your account…");
        await client.register(email.trim(), password, setupCode || undefined);
      }
      setBusy("Signing in…");
      await client.login(email.trim(), password);
      navigate(from, { replace: true });
    } catch (err) {
      setError(errorMessage(err));
      setBusy(null);
    }
  };

  const switchMode = (next: Mode) => {
    setMode(next);
    setError(null);
  };

  return (
    <div className="auth-page">
      <main className="auth-card" id="main">
        <div className="auth-brand">
          <img src="/favicon.svg" alt="" width="40" height="40" />
          <h1>Forgeline</h1>
        </div>
        <p className="muted">Fine-tune an open model on your data, deploy it, and chat with it.</p>
        <Tabs
          label="Sign in or create an account"
          tabs={[
            { value: "signin", label: "Sign in" },
            { value: "register", label: "Create account" },
          ]}
          value={mode}
          onChange={switchMode}
          panelId={panelId}
        />
        <div id={panelId} role="tabpanel" aria-labelledby={`${panelId}-tab-${mode}`}>
          <form onSubmit={submit} className="form" aria-label={mode === "signin" ? "Sign in" : "Create account"}>
            <div className="field">
              <label htmlFor={emailId}>Email</label>
              <input
                id={emailId}
                type="email"
                autoComplete="email"
                required
                value={email}
                onChange={(e) => setEmail(e.target.value)}
              />
            </div>
            <div className="field">
              <label htmlFor={passwordId}>Password</label>
              <input
                id={passwordId}
                type="password"
                autoComplete={mode === "signin" ? "current-password" : "new-password"}
                required
                minLength={mode === "register" ? 12 : undefined}
                aria-describedby={mode === "register" ? hintId : undefined}
                value={password}
                onChange={(e) => setPassword(e.target.value)}
              />
              {mode === "register" && (
                <p className="hint" id={hintId}>
                  {PASSWORD_HINT}
                </p>
              )}
            </div>
            <ErrorMessage message={error} />
            <button type="submit" className="button button-primary button-wide" disabled={busy !== null}>
              {busy ?? (mode === "signin" ? "Sign in" : "Create account")}
            </button>
            {mode === "register" && setupCode && (
              <p className="hint">
                This account becomes the administrator of this Forgeline: you will manage who else
                uses it.
              </p>
            )}
          </form>
        </div>
        {providers.length > 0 && (
          <section className="oauth" aria-label="Sign in with another account">
            <p className="divider">
              <span>or</span>
            </p>
            {providers.map((provider) => (
              <a key={provider.name} className="button button-wide" href={provider.start_url}>
                Continue with {provider.display_name || provider.name}
              </a>
            ))}
          </section>
        )}
      </main>
    </div>
  );
}
