import { useId, useState, type FormEvent } from "react";
import { errorMessage } from "../api/client";
import type { ApiKey, ApiKeyCreated, Credential, CredentialKind, ListOf } from "../api/types";
import { useApi } from "../auth/AuthContext";
import { CopyButton, ErrorMessage, formatDate, Notice, PageHeader, Spinner } from "../components/ui";
import { useResource } from "../lib/useResource";

export function Settings() {
  return (
    <>
      <PageHeader title="Settings" intro="Keys for your own code, and the accounts Forgeline may use for you." />
      <ApiKeys />
      <CloudCredentials />
      <WandbKey />
    </>
  );
}

// --- API keys ------------------------------------------------------------------------------

export function ApiKeys() {
  const client = useApi();
  const keys = useResource((signal) => client.get<ListOf<ApiKey>>("/api/v1/api-keys", signal), [client]);
  const [name, setName] = useState("");
  const [creating, setCreating] = useState(false);
  const [created, setCreated] = useState<ApiKeyCreated | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [revoking, setRevoking] = useState<string | null>(null);
  const nameId = useId();

  const create = async (event: FormEvent) => {
    event.preventDefault();
    setError(null);
    setCreating(true);
    try {
      const key = await client.post<ApiKeyCreated>("/api/v1/api-keys", { name: name.trim() });
      setCreated(key);
      setName("");
      keys.reload();
    } catch (err) {
      setError(errorMessage(err));
    } finally {
      setCreating(false);
    }
  };

  const revoke = async (key: ApiKey) => {
    if (!window.confirm(`Revoke the key "${key.name}"? Anything using it stops working at once.`)) return;
    setError(null);
    setRevoking(key.id);
    try {
      await client.delete(`/api/v1/api-keys/${encodeURIComponent(key.id)}`);
      if (created?.id === key.id) setCreated(null);
      keys.reload();
    } catch (err) {
      setError(errorMessage(err));
    } finally {
      setRevoking(null);
    }
  };

  const active = keys.data?.data.filter((k) => !k.revoked_at) ?? [];

  return (
    <section className="card" aria-labelledby="api-keys-title">
      <h2 id="api-keys-title">API keys</h2>
      <p className="muted">
        Use a key instead of your password in scripts and apps, with any OpenAI client. Each key is shown only once,
        when you create it.
      </p>
      <form className="inline-form" onSubmit={create}>
        <div className="field">
          <label htmlFor={nameId}>Key name</label>
          <input
            id={nameId}
            required
            maxLength={100}
            placeholder="e.g. my laptop"
            value={name}
            onChange={(e) => setName(e.target.value)}
          />
        </div>
        <button type="submit" className="button button-primary" disabled={creating}>
          {creating ? "Creating…" : "Create key"}
        </button>
      </form>
      <ErrorMessage message={error} />
      {created && (
        <div className="secret-once" role="status" aria-live="polite">
          <p>
            <strong>Your new key “{created.name}”.</strong> Copy it now: it will not be shown again.
          </p>
          <div className="secret-row">
            <code data-testid="new-api-key">{created.key}</code>
            <CopyButton text={created.key} label="Copy key" />
          </div>
          <button type="button" className="button button-small button-quiet" onClick={() => setCreated(null)}>
            I have stored it
          </button>
        </div>
      )}
      <ErrorMessage message={keys.error} onRetry={keys.reload} />
      {keys.loading && !keys.data && <Spinner label="Loading your keys…" />}
      {keys.data && active.length === 0 && <p className="muted">You have no API keys yet.</p>}
      {active.length > 0 && (
        <div className="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Key</th>
                <th scope="col">Created</th>
                <th scope="col">Last used</th>
                <th scope="col">
                  <span className="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {active.map((key) => (
                <tr key={key.id}>
                  <td data-label="Name">{key.name}</td>
                  <td data-label="Key">
                    <code>{key.prefix}…</code>
                  </td>
                  <td data-label="Created">{formatDate(key.created_at)}</td>
                  <td data-label="Last used">{key.last_used_at ? formatDate(key.last_used_at) : "never"}</td>
                  <td>
                    <button
                      type="button"
                      className="button button-small button-danger"
                      onClick={() => revoke(key)}
                      disabled={revoking === key.id}
                      aria-label={`Revoke key ${key.name}`}
                    >
                      {revoking === key.id ? "Revoking…" : "Revoke"}
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

// --- credentials ---------------------------------------------------------------------------

function useCredentials() {
  const client = useApi();
  return useResource((signal) => client.get<ListOf<Credential>>("/api/v1/credentials", signal), [client]);
}

const KIND_LABEL: Record<string, string> = { aws: "AWS", gcp: "Google Cloud", wandb: "Weights & Biases" };

function CredentialList({
  items,
  onDeleted,
}: {
  items: Credential[];
  onDeleted: () => void;
}) {
  const client = useApi();
  const [error, setError] = useState<string | null>(null);
  const [deleting, setDeleting] = useState<string | null>(null);
  const remove = async (credential: Credential) => {
    if (!window.confirm(`Forget "${credential.name}"? Forgeline will no longer be able to use it.`)) return;
    setError(null);
    setDeleting(credential.id);
    try {
      await client.delete(`/api/v1/credentials/${encodeURIComponent(credential.id)}`);
      onDeleted();
    } catch (err) {
      setError(errorMessage(err));
    } finally {
      setDeleting(null);
    }
  };
  return (
    <>
      <ErrorMessage message={error} />
      <ul className="plain-list">
        {items.map((c) => (
          <li key={c.id} className="list-row">
            <div>
              <strong>{c.name}</strong>{" "}
              <span className="muted">
                {KIND_LABEL[c.kind] ?? c.kind}
                {c.location ? ` · ${c.location}` : ""}
                {c.hint ? ` · ${c.hint}` : ""}
                {c.checked_at ? ` · checked ${formatDate(c.checked_at)}` : ""}
              </span>
            </div>
            <button
              type="button"
              className="button button-small button-danger"
              onClick={() => remove(c)}
              disabled={deleting === c.id}
              aria-label={`Forget ${c.name}`}
            >
              {deleting === c.id ? "Forgetting…" : "Forget"}
            </button>
          </li>
        ))}
      </ul>
    </>
  );
}

export function CloudCredentials() {
  const client = useApi();
  const credentials = useCredentials();
  const [kind, setKind] = useState<"aws" | "gcp">("aws");
  const [name, setName] = useState("");
  const [location, setLocation] = useState("");
  const [accessKeyId, setAccessKeyId] = useState("");
  const [secretAccessKey, setSecretAccessKey] = useState("");
  const [serviceAccount, setServiceAccount] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [saved, setSaved] = useState<string | null>(null);
  const ids = { kind: useId(), name: useId(), location: useId(), keyId: useId(), secret: useId(), sa: useId(), file: useId() };

  const readFile = async (file: File | undefined) => {
    if (!file) return;
    setServiceAccount(await file.text());
  };

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setError(null);
    setSaved(null);
    let secret: Record<string, unknown>;
    if (kind === "aws") {
      secret = { access_key_id: accessKeyId.trim(), secret_access_key: secretAccessKey.trim() };
    } else {
      try {
        secret = { service_account: JSON.parse(serviceAccount) as unknown };
      } catch {
        setError("The service account key must be the JSON key file Google gave you.");
        return;
      }
    }
    setBusy(true);
    try {
      const created = await client.post<Credential>("/api/v1/credentials", {
        name: name.trim(),
        kind,
        location: location.trim(),
        secret,
      });
      setSaved(`“${created.name}” was checked and saved. Its secret is stored encrypted and never shown again.`);
      setName("");
      setLocation("");
      setAccessKeyId("");
      setSecretAccessKey("");
      setServiceAccount("");
      credentials.reload();
    } catch (err) {
      setError(errorMessage(err));
    } finally {
      setBusy(false);
    }
  };

  const cloud = credentials.data?.data.filter((c) => c.kind === "aws" || c.kind === "gcp") ?? [];

  return (
    <section className="card" aria-labelledby="cloud-title">
      <h2 id="cloud-title">Cloud accounts</h2>
      <p className="muted">
        To train or serve on a GPU in your own AWS or Google Cloud account. Forgeline first checks that the account may
        start a GPU machine there; secrets can be replaced or forgotten, never read back.
      </p>
      <ErrorMessage message={credentials.error} onRetry={credentials.reload} />
      {credentials.loading && !credentials.data && <Spinner label="Loading your accounts…" />}
      {cloud.length > 0 && <CredentialList items={cloud} onDeleted={credentials.reload} />}
      <form className="form" onSubmit={submit} aria-label="Add a cloud account">
        <fieldset className="segmented">
          <legend>Provider</legend>
          {(["aws", "gcp"] as const).map((k) => (
            <label key={k} className={kind === k ? "segment active" : "segment"}>
              <input
                type="radio"
                name={ids.kind}
                value={k}
                checked={kind === k}
                onChange={() => {
                  setKind(k);
                  setError(null);
                }}
              />
              {KIND_LABEL[k]}
            </label>
          ))}
        </fieldset>
        <div className="grid-2">
          <div className="field">
            <label htmlFor={ids.name}>Name</label>
            <input id={ids.name} required maxLength={200} placeholder="e.g. Research account" value={name} onChange={(e) => setName(e.target.value)} />
          </div>
          <div className="field">
            <label htmlFor={ids.location}>{kind === "aws" ? "Region" : "Zone"}</label>
            <input
              id={ids.location}
              required
              maxLength={64}
              placeholder={kind === "aws" ? "us-east-1" : "us-central1-a"}
              value={location}
              onChange={(e) => setLocation(e.target.value)}
            />
          </div>
        </div>
        {kind === "aws" ? (
          <div className="grid-2">
            <div className="field">
              <label htmlFor={ids.keyId}>Access key ID</label>
              <input id={ids.keyId} required autoComplete="off" spellCheck={false} value={accessKeyId} onChange={(e) => setAccessKeyId(e.target.value)} />
            </div>
            <div className="field">
              <label htmlFor={ids.secret}>Secret access key</label>
              <input
                id={ids.secret}
                type="password"
                required
                autoComplete="new-password"
                value={secretAccessKey}
                onChange={(e) => setSecretAccessKey(e.target.value)}
              />
            </div>
          </div>
        ) : (
          <div className="field">
            <label htmlFor={ids.sa}>Service account key (JSON)</label>
            <textarea
              id={ids.sa}
              required
              rows={4}
              spellCheck={false}
              placeholder='{"type": "service_account", ...}'
              value={serviceAccount}
              onChange={(e) => setServiceAccount(e.target.value)}
            />
            <label htmlFor={ids.file} className="hint">
              Or choose the key file:
            </label>
            <input id={ids.file} type="file" accept="application/json,.json" onChange={(e) => void readFile(e.target.files?.[0])} />
          </div>
        )}
        <ErrorMessage message={error} />
        {saved && <Notice tone="success">{saved}</Notice>}
        <div>
          <button type="submit" className="button button-primary" disabled={busy}>
            {busy ? "Checking the account… (this can take a few seconds)" : `Check and save ${KIND_LABEL[kind]} account`}
          </button>
        </div>
      </form>
    </section>
  );
}

export function WandbKey() {
  const client = useApi();
  const credentials = useCredentials();
  const [apiKey, setApiKey] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [saved, setSaved] = useState(false);
  const keyId = useId();
  const existing = credentials.data?.data.filter((c) => c.kind === ("wandb" as CredentialKind)) ?? [];

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setError(null);
    setSaved(false);
    setBusy(true);
    try {
      await client.post<Credential>("/api/v1/credentials", {
        name: "Weights & Biases",
        kind: "wandb",
        secret: { api_key: apiKey.trim() },
      });
      setApiKey("");
      setSaved(true);
      credentials.reload();
    } catch (err) {
      setError(errorMessage(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <section className="card" aria-labelledby="wandb-title">
      <h2 id="wandb-title">Weights &amp; Biases</h2>
      <p className="muted">
        Optional. With a key, your fine-tuning runs can also be followed on wandb.ai; without one they are logged
        privately here.
      </p>
      {existing.length > 0 && <CredentialList items={existing} onDeleted={credentials.reload} />}
      {credentials.data && existing.length === 0 && <p className="muted">No wandb key saved.</p>}
      <form className="inline-form" onSubmit={submit}>
        <div className="field">
          <label htmlFor={keyId}>wandb API key</label>
          <input
            id={keyId}
            type="password"
            required
            autoComplete="new-password"
            value={apiKey}
            onChange={(e) => setApiKey(e.target.value)}
          />
        </div>
        <button type="submit" className="button button-primary" disabled={busy}>
          {busy ? "Saving…" : "Save key"}
        </button>
      </form>
      <ErrorMessage message={error} />
      {saved && <Notice tone="success">Saved. The key is stored encrypted and never shown again.</Notice>}
    </section>
  );
}
