import { useEffect, useId, useMemo, useState, type FormEvent } from "react";
import { Link, useSearchParams } from "react-router-dom";
import { errorMessage, isAbort } from "../api/client";
import type { BaseModel, Credential, Deployment, ListOf, ModelVersion } from "../api/types";
import { useApi } from "../auth/AuthContext";
import { CloudAccountPicker } from "../components/CloudAccountPicker";
import { CodeBlock, CopyButton, EmptyState, ErrorMessage, formatDate, LogTail, PageHeader, Spinner, StatusBadge, Tabs } from "../components/ui";
import { apiBaseUrl, curlSnippet, pythonSnippet } from "../lib/snippets";
import { useResource } from "../lib/useResource";

const BUSY = new Set(["pending", "starting", "stopping"]);
const LIVE = new Set(["pending", "starting", "ready"]);

/** Poll quickly while something is changing, slowly otherwise. */
export function pollInterval(list: ListOf<Deployment> | undefined): number {
  return list?.data.some((d) => BUSY.has(d.state)) ? 2000 : 10000;
}

export function Deployments() {
  const client = useApi();
  const deployments = useResource(
    (signal) => client.get<ListOf<Deployment>>("/api/v1/deployments", signal),
    [client],
    pollInterval,
  );
  const sorted = useMemo(() => {
    const list = deployments.data?.data ?? [];
    return [...list].sort((a, b) => Number(LIVE.has(b.state)) - Number(LIVE.has(a.state)));
  }, [deployments.data]);

  return (
    <>
      <PageHeader
        title="Deployments"
        intro="Your models running behind an OpenAI-compatible API. Chat with them here, or call them from code."
      />
      <DeployForm onDeployed={deployments.reload} />
      <ErrorMessage message={deployments.error} onRetry={deployments.reload} />
      {deployments.loading && !deployments.data && <Spinner label="Loading deployments…" />}
      {deployments.data && sorted.length === 0 && (
        <EmptyState title="Nothing deployed yet">
          <p>Deploy a base model above to try it out, or fine-tune one on your own data first.</p>
        </EmptyState>
      )}
      <ul className="plain-list deployments" aria-label="Your deployments">
        {sorted.map((d) => (
          <li key={d.id}>
            <DeploymentCard deployment={d} onChanged={deployments.reload} />
          </li>
        ))}
      </ul>
    </>
  );
}

function DeploymentCard({ deployment: d, onChanged }: { deployment: Deployment; onChanged: () => void }) {
  const client = useApi();
  const [stopping, setStopping] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [tab, setTab] = useState<"python" | "curl">("python");
  const origin = window.location.origin;
  const models = d.adapters.length > 0 ? d.adapters.map((a) => a.name) : [d.name];
  const live = LIVE.has(d.state);

  const stop = async () => {
    if (!window.confirm(`Stop "${d.name}"? Apps using it will get errors until you deploy again.`)) return;
    setError(null);
    setStopping(true);
    try {
      await client.post(`/api/v1/deployments/${encodeURIComponent(d.id)}/stop`);
      onChanged();
    } catch (err) {
      setError(errorMessage(err));
    } finally {
      setStopping(false);
    }
  };

  return (
    <article className="card deployment" aria-labelledby={`dep-${d.id}`}>
      <header className="deployment-head">
        <div>
          <h2 id={`dep-${d.id}`}>{d.name}</h2>
          <p className="muted">
            {d.base_model ?? "fine-tuned model"}
            {d.model_version_id ? (d.weights === "adapter" ? " · served as an adapter" : " · merged weights") : ""} · {d.target === "local" ? "this machine" : d.target.toUpperCase()}
            {d.instance_type ? ` · ${d.instance_type}` : ""} · created {formatDate(d.created_at)}
          </p>
        </div>
        <StatusBadge state={d.state} />
      </header>
      {d.status_message && <p aria-live="polite">{d.status_message}</p>}
      {d.state === "failed" && d.failure_reason && (
        <div className="alert alert-error" role="alert">
          {d.failure_reason}
        </div>
      )}
      {d.stop_reason && !live && <p className="muted">{d.stop_reason}</p>}
      {d.cost_guard && live && <p className="muted">{d.cost_guard}</p>}
      {d.restarts > 0 && <p className="muted">Restarted {d.restarts} time{d.restarts === 1 ? "" : "s"}.</p>}
      {live && (
        <>
          <dl className="endpoint">
            <dt>Endpoint</dt>
            <dd>
              <code>{apiBaseUrl(origin)}</code> <CopyButton text={apiBaseUrl(origin)} label="Copy endpoint" />
            </dd>
            <dt>Model name{models.length > 1 ? "s" : ""}</dt>
            <dd>
              {models.map((m) => (
                <code key={m} className="model-name">
                  {m}
                </code>
              ))}
            </dd>
          </dl>
          <Tabs
            small
            label={`Code examples for ${d.name}`}
            tabs={[
              { value: "python", label: "Python (openai)" },
              { value: "curl", label: "curl" },
            ]}
            value={tab}
            onChange={setTab}
            panelId={`examples-${d.id}`}
          />
          <div id={`examples-${d.id}`} role="tabpanel" aria-labelledby={`examples-${d.id}-tab-${tab}`}>
            <CodeBlock
              label={tab === "python" ? "Python example" : "curl example"}
              code={tab === "python" ? pythonSnippet(origin, models[0]) : curlSnippet(origin, models[0])}
            />
          </div>
          <p className="hint">
            Replace the placeholder with a key from <Link to="/settings">Settings</Link>.
          </p>
        </>
      )}
      <DeploymentLogs deployment={d} />
      <ErrorMessage message={error} />
      <div className="row-actions">
        {d.state === "ready" && (
          <Link className="button button-primary" to={`/chat?model=${encodeURIComponent(models[0])}`}>
            Chat with it
          </Link>
        )}
        {live && (
          <button type="button" className="button button-danger" onClick={stop} disabled={stopping}>
            {stopping ? "Stopping…" : "Stop"}
          </button>
        )}
      </div>
    </article>
  );
}

function DeployForm({ onDeployed }: { onDeployed: () => void }) {
  const client = useApi();
  const catalogue = useResource(
    async (signal) => {
      const [bases, versions, credentials] = await Promise.all([
        client.get<ListOf<BaseModel>>("/api/v1/base-models", signal),
        client.get<ListOf<ModelVersion>>("/api/v1/models", signal).catch(() => ({ data: [], count: 0 })),
        client.get<ListOf<Credential>>("/api/v1/credentials", signal).catch(() => ({ data: [], count: 0 })),
      ]);
      return { bases: bases.data, versions: versions.data, credentials: credentials.data };
    },
    [client],
  );
  const [params] = useSearchParams();
  const [source, setSource] = useState(params.get("version") ? `version:${params.get("version")}` : "");
  const [weights, setWeights] = useState<"merged" | "adapter">("merged");
  const [name, setName] = useState("");
  const [target, setTarget] = useState<"local" | "aws" | "gcp">("local");
  const [credentialId, setCredentialId] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [started, setStarted] = useState<string | null>(null);
  const ids = { source: useId(), name: useId(), target: useId() };

  const bases = catalogue.data?.bases ?? [];
  const versions = catalogue.data?.versions ?? [];
  const cloudCredentials = (catalogue.data?.credentials ?? []).filter((c) => c.kind === target);
  const defaultBase = bases.find((b) => b.available_locally) ?? bases[0];
  const chosen = source || (defaultBase ? `base:${defaultBase.id}` : "");
  const chosenVersion = chosen.startsWith("version:") ? versions.find((v) => `version:${v.id}` === chosen) : undefined;

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setError(null);
    setStarted(null);
    const [kind, id] = chosen.split(/:(.*)/s);
    const body: Record<string, unknown> = kind === "base" ? { base_model: id } : { model_version_id: id };
    if (kind !== "base") body.weights = chosenVersion?.has_adapter ? weights : "merged";
    if (name.trim()) body.name = name.trim();
    body.target = target;
    if (target !== "local") {
      if (!credentialId && cloudCredentials.length === 0) {
        setError(`Add a ${target.toUpperCase()} account in Settings first.`);
        return;
      }
      body.credential_id = credentialId || cloudCredentials[0]?.id;
    }
    setBusy(true);
    try {
      const created = await client.post<Deployment>("/api/v1/deployments", body);
      setStarted(`“${created.name}” is starting. It is usually ready in a minute or two; this page updates by itself.`);
      setName("");
      onDeployed();
    } catch (err) {
      setError(errorMessage(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <section className="card" aria-labelledby="deploy-title">
      <h2 id="deploy-title">Deploy a model</h2>
      <ErrorMessage message={catalogue.error} onRetry={catalogue.reload} />
      {catalogue.loading && !catalogue.data && <Spinner label="Loading the models you can deploy…" />}
      {catalogue.data && (
        <form className="form" onSubmit={submit}>
          <div className="grid-3">
            <div className="field">
              <label htmlFor={ids.source}>Model</label>
              <select id={ids.source} value={chosen} onChange={(e) => setSource(e.target.value)} required>
                {versions.length > 0 && (
                  <optgroup label="Your fine-tuned models">
                    {versions.map((v) => (
                      <option key={v.id} value={`version:${v.id}`}>
                        {v.name} ({v.base_model})
                      </option>
                    ))}
                  </optgroup>
                )}
                <optgroup label="Base models">
                  {bases.map((b) => (
                    <option key={b.id} value={`base:${b.id}`}>
                      {b.display_name}
                      {b.available_locally ? "" : " (cloud GPU only)"}
                    </option>
                  ))}
                </optgroup>
              </select>
            </div>
            <div className="field">
              <label htmlFor={ids.name}>Name (optional)</label>
              <input
                id={ids.name}
                maxLength={64}
                placeholder="the model name in API calls"
                value={name}
                onChange={(e) => setName(e.target.value)}
              />
            </div>
            <div className="field">
              <label htmlFor={ids.target}>Where it runs</label>
              <select id={ids.target} value={target} onChange={(e) => setTarget(e.target.value as typeof target)}>
                <option value="local">This machine</option>
                <option value="aws">My AWS account (GPU)</option>
                <option value="gcp">My Google Cloud account (GPU)</option>
              </select>
            </div>
          </div>
          {chosenVersion?.has_adapter && (
            <fieldset className="segmented-choice">
              <legend>How to serve it</legend>
              <label className="choice-inline">
                <input type="radio" name="weights" value="merged" checked={weights === "merged"} onChange={() => setWeights("merged")} />
                <span>
                  <strong>Merged weights</strong>: the adapter folded into the model; one model per server.
                </span>
              </label>
              <label className="choice-inline">
                <input type="radio" name="weights" value="adapter" checked={weights === "adapter"} onChange={() => setWeights("adapter")} />
                <span>
                  <strong>Base model + adapter</strong>: lighter to start; adapters of the same base can share one server.
                </span>
              </label>
            </fieldset>
          )}
          {target !== "local" && (
            <CloudAccountPicker cloud={target} accounts={cloudCredentials} value={credentialId} onChange={setCredentialId} />
          )}
          <ErrorMessage message={error} />
          {started && (
            <div className="alert alert-success" role="status">
              {started}
            </div>
          )}
          <div>
            <button type="submit" className="button button-primary" disabled={busy || !chosen}>
              {busy ? "Deploying…" : "Deploy"}
            </button>
          </div>
        </form>
      )}
    </section>
  );
}

/** The server's last log lines, loaded when opened and refreshed while it changes. */
function DeploymentLogs({ deployment: d }: { deployment: Deployment }) {
  const client = useApi();
  const [open, setOpen] = useState(false);
  const [lines, setLines] = useState<string[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const busy = BUSY.has(d.state);
  useEffect(() => {
    if (!open) return;
    const controller = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const load = async () => {
      try {
        const reply = await client.get<{ lines: string[] }>(
          `/api/v1/deployments/${encodeURIComponent(d.id)}/logs?tail=200`,
          controller.signal,
        );
        setLines(reply.lines);
        setError(null);
      } catch (err) {
        if (isAbort(err)) return;
        setError(errorMessage(err));
      }
      if (busy && !controller.signal.aborted) timer = setTimeout(load, 3000);
    };
    void load();
    return () => {
      controller.abort();
      clearTimeout(timer);
    };
  }, [client, d.id, open, busy]);
  return (
    <details className="logs" onToggle={(e) => setOpen((e.target as HTMLDetailsElement).open)}>
      <summary>Server log</summary>
      <ErrorMessage message={error} />
      {open && lines === null && !error && <Spinner label="Loading the log…" />}
      {lines !== null &&
        (lines.length === 0 ? (
          <p className="muted">The server has not written anything yet.</p>
        ) : (
          <LogTail lines={lines} label={`Server log of ${d.name}`} />
        ))}
    </details>
  );
}
