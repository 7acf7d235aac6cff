// Datasets: upload (drag and drop or a button, with progress), then what inspection found:
// the format to confirm, problems next to their rows, a preview, token statistics; delete.

import { useId, useState } from "react";
import { Link, useNavigate, useParams } from "react-router-dom";
import { errorMessage, isAbort } from "../api/client";
import type { Dataset, DatasetFormat, DatasetProblem, ListOf, PreviewRow } from "../api/types";
import { formatBytes, uploadWithProgress } from "../api/upload";
import { useApi } from "../auth/AuthContext";
import { DropZone, ProgressBar } from "../components/DropZone";
import { EmptyState, ErrorMessage, formatDate, Notice, PageHeader, Spinner, StatusBadge } from "../components/ui";
import { useResource } from "../lib/useResource";

export const FORMATS: { value: DatasetFormat; label: string; description: string }[] = [
  { value: "chat", label: "Chat", description: "Conversations as a list of messages, each with a role and content." },
  { value: "alpaca", label: "Instructions", description: "An instruction (and optional input) with the answer to give." },
  { value: "sharegpt", label: "ShareGPT", description: "Conversations in ShareGPT's shape (from / value turns)." },
  { value: "preference", label: "Preference pairs", description: "A prompt with a chosen and a rejected answer." },
  { value: "text", label: "Plain text", description: "Text or documents for the model to learn (continued pre-training)." },
];

export const ACCEPTED = ".jsonl,.json,.csv,.parquet,.pdf,.txt,.md,.docx,.html,.htm,.zip";

const formatLabel = (value: string | null | undefined) =>
  FORMATS.find((f) => f.value === value)?.label ?? value ?? "—";

/** Poll every 1.5 s while the file is being inspected. */
export const datasetPoll = (d: Dataset | undefined) => (d?.state === "inspecting" ? 1500 : undefined);

export function Datasets() {
  const client = useApi();
  const navigate = useNavigate();
  const list = useResource(
    (signal) => client.get<ListOf<Dataset>>("/api/v1/datasets", signal),
    [client],
    (data) => (data?.data.some((d) => d.state === "inspecting") ? 2000 : 15000),
  );
  const [progress, setProgress] = useState<{ name: string; fraction: number } | null>(null);
  const [error, setError] = useState<string | null>(null);

  const upload = async (files: File[]) => {
    const file = files[0];
    setError(null);
    setProgress({ name: file.name, fraction: 0 });
    try {
      const created = await uploadWithProgress<Dataset>(
        client,
        "/api/v1/datasets",
        () => {
          const form = new FormData();
          form.append("file", file, file.name);
          return form;
        },
        { onProgress: (p) => setProgress({ name: file.name, fraction: p.fraction }) },
      );
      navigate(`/datasets/${encodeURIComponent(created.id)}`);
    } catch (err) {
      if (!isAbort(err)) setError(errorMessage(err));
    } finally {
      setProgress(null);
    }
  };

  const datasets = list.data?.data ?? [];
  return (
    <>
      <PageHeader
        title="Datasets"
        intro="Examples of what you want your model to do. Each file is checked row by row before you train on it."
      />
      <section className="card" aria-labelledby="upload-title">
        <h2 id="upload-title">Upload a dataset</h2>
        <DropZone
          label="Choose a file"
          accept={ACCEPTED}
          disabled={!!progress}
          onFiles={upload}
          hint="JSONL, CSV or Parquet rows (chat messages, instructions, preference pairs, text), or documents (PDF, Word, Markdown, a .zip of them)."
        />
        {progress && (
          <div aria-live="polite">
            <ProgressBar
              value={progress.fraction}
              label={progress.fraction < 1 ? `Uploading ${progress.name}` : `Storing ${progress.name}…`}
            />
          </div>
        )}
        <ErrorMessage message={error} />
      </section>
      <ErrorMessage message={list.error} onRetry={list.reload} />
      {list.loading && !list.data && <Spinner label="Loading datasets…" />}
      {list.data && datasets.length === 0 && (
        <EmptyState title="No datasets yet">
          <p>Upload a file of examples above to get started.</p>
        </EmptyState>
      )}
      {datasets.length > 0 && (
        <div className="table-wrap">
          <table>
            <caption className="visually-hidden">Your datasets</caption>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">State</th>
                <th scope="col">Format</th>
                <th scope="col">Rows</th>
                <th scope="col">Uploaded</th>
              </tr>
            </thead>
            <tbody>
              {datasets.map((d) => (
                <tr key={d.id}>
                  <td data-label="Name">
                    <Link to={`/datasets/${encodeURIComponent(d.id)}`}>{d.name}</Link>
                  </td>
                  <td data-label="State">
                    <StatusBadge state={d.state} />
                  </td>
                  <td data-label="Format">{formatLabel(d.format)}</td>
                  <td data-label="Rows">{d.rows.toLocaleString()}</td>
                  <td data-label="Uploaded">{formatDate(d.created_at)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </>
  );
}

export function DatasetDetail() {
  const { id = "" } = useParams();
  const client = useApi();
  const navigate = useNavigate();
  const path = `/api/v1/datasets/${encodeURIComponent(id)}`;
  const dataset = useResource((signal) => client.get<Dataset>(path, signal), [client, path], datasetPoll);
  const d = dataset.data;
  const [deleting, setDeleting] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const remove = async () => {
    if (!d || !window.confirm(`Delete "${d.name}"? Jobs already trained on it keep their models.`)) return;
    setError(null);
    setDeleting(true);
    try {
      await client.delete(path);
      navigate("/datasets");
    } catch (err) {
      setError(errorMessage(err));
      setDeleting(false);
    }
  };

  return (
    <>
      <p>
        <Link to="/datasets">← All datasets</Link>
      </p>
      <ErrorMessage message={dataset.error} onRetry={dataset.reload} />
      {dataset.loading && !d && <Spinner label="Loading the dataset…" />}
      {d && (
        <>
          <PageHeader
            title={d.name}
            intro={`${d.file_name}${d.size ? ` · ${formatBytes(d.size)}` : ""} · uploaded ${formatDate(d.created_at)}`}
            actions={
              <>
                {d.state === "ready" && (
                  <Link className="button button-primary" to={`/fine-tune?dataset=${encodeURIComponent(d.id)}`}>
                    Fine-tune on it
                  </Link>
                )}
                <button type="button" className="button button-danger" onClick={remove} disabled={deleting}>
                  {deleting ? "Deleting…" : "Delete"}
                </button>
              </>
            }
          />
          <ErrorMessage message={error} />
          <DatasetSummary dataset={d} />
          {d.state !== "inspecting" && d.state !== "failed" && (
            <FormatCard dataset={d} onChanged={dataset.reload} />
          )}
          {d.token_stats ? (
            <TokenStatsCard dataset={d} />
          ) : (
            d.token_stats_note && d.state !== "inspecting" && <Notice>{d.token_stats_note}</Notice>
          )}
          {d.state !== "inspecting" && d.state !== "failed" && (
            <Preview datasetId={d.id} problems={d.problems ?? []} version={d.format ?? ""} />
          )}
        </>
      )}
    </>
  );
}

function DatasetSummary({ dataset: d }: { dataset: Dataset }) {
  return (
    <section className="card" aria-labelledby="check-title">
      <div className="deployment-head">
        <h2 id="check-title">Check</h2>
        <StatusBadge state={d.state} />
      </div>
      {d.state === "inspecting" && <Spinner label="Checking your file row by row… this takes a few seconds." />}
      {d.state === "failed" && (
        <div className="alert alert-error" role="alert">
          {d.failure_reason ?? "The file could not be read."}
        </div>
      )}
      {d.state === "ready" && (
        <Notice tone="success">
          {(d.valid_rows ?? d.rows).toLocaleString()} rows are ready to train on
          {d.train_rows !== undefined && d.eval_rows ? ` (${d.train_rows} to learn from, ${d.eval_rows} held back to measure progress)` : ""}.
        </Notice>
      )}
      {d.state === "invalid" && (
        <div className="alert alert-error" role="alert">
          {d.failure_reason ??
            `${d.problem_count ?? 0} problem${d.problem_count === 1 ? "" : "s"} to fix before training: see them next to their rows below.`}
        </div>
      )}
      {(d.problems?.length ?? 0) > 0 && (
        <>
          <h3>
            Problems found{d.problem_count && d.problem_count > (d.problems?.length ?? 0) ? ` (the first ${d.problems?.length} of ${d.problem_count})` : ""}
          </h3>
          <ul className="problems" aria-label="Problems found">
            {d.problems?.map((p, i) => (
              <li key={i}>
                <strong>{p.line ? `${capital(p.unit)} ${p.line}` : "The file"}</strong>
                {p.field ? ` (${p.field})` : ""}: {p.message} <span className="hint">{p.fix}</span>
              </li>
            ))}
          </ul>
        </>
      )}
    </section>
  );
}

const capital = (s: string) => (s ? s[0].toUpperCase() + s.slice(1) : s);

function FormatCard({ dataset: d, onChanged }: { dataset: Dataset; onChanged: () => void }) {
  const client = useApi();
  const id = useId();
  const suggested = d.format ?? d.detected_format ?? "chat";
  const [choice, setChoice] = useState<string>(suggested);
  // The choice follows the dataset's format (confirmed, or else detected) when that changes.
  const [choiceFollows, setChoiceFollows] = useState(suggested);
  if (choiceFollows !== suggested) {
    setChoiceFollows(suggested);
    setChoice(suggested);
  }
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const confirm = async () => {
    setError(null);
    setBusy(true);
    try {
      await client.patch(`/api/v1/datasets/${encodeURIComponent(d.id)}`, { format: choice });
      onChanged();
    } catch (err) {
      setError(errorMessage(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <section className="card" aria-labelledby={`${id}-title`}>
      <h2 id={`${id}-title`}>Format</h2>
      {d.detected_format ? (
        <p>
          This looks like <strong>{formatLabel(d.detected_format)}</strong>
          {d.detection_reason ? `: ${d.detection_reason}` : "."}
        </p>
      ) : (
        <p>The format could not be recognised{d.detection_reason ? `: ${d.detection_reason}` : "."}</p>
      )}
      {d.format_confirmed ? (
        <Notice tone="success">Format confirmed: {formatLabel(d.format)}.</Notice>
      ) : (
        <p className="hint">Confirm it, or pick the right one: the file is checked again with that format.</p>
      )}
      <div className="inline-form">
        <div className="field">
          <label htmlFor={id}>The rows are</label>
          <select id={id} value={choice} onChange={(e) => setChoice(e.target.value)}>
            {FORMATS.map((f) => (
              <option key={f.value} value={f.value}>
                {f.label}: {f.description}
              </option>
            ))}
          </select>
        </div>
        <button
          type="button"
          className="button button-primary"
          onClick={confirm}
          disabled={busy || (d.format_confirmed === true && choice === d.format)}
        >
          {busy ? "Saving…" : "Confirm format"}
        </button>
      </div>
      <ErrorMessage message={error} />
    </section>
  );
}

function TokenStatsCard({ dataset: d }: { dataset: Dataset }) {
  const t = d.token_stats!;
  return (
    <section className="card" aria-labelledby="tokens-title">
      <h2 id="tokens-title">Length in tokens</h2>
      <p className="hint">
        Tokens are the pieces a model reads (about ¾ of a word each), counted with {t.tokenizer}'s tokenizer.
      </p>
      <dl className="stats" aria-label="Token statistics">
        <div>
          <dt>Total</dt>
          <dd>{t.total_tokens.toLocaleString()}</dd>
        </div>
        <div>
          <dt>Per row, typical</dt>
          <dd>{t.p50.toLocaleString()}</dd>
        </div>
        <div>
          <dt>Mean</dt>
          <dd>{t.mean.toLocaleString()}</dd>
        </div>
        <div>
          <dt>Shortest / longest</dt>
          <dd>
            {t.min.toLocaleString()} / {t.max.toLocaleString()}
          </dd>
        </div>
        <div>
          <dt>95% are under</dt>
          <dd>{t.p95.toLocaleString()}</dd>
        </div>
      </dl>
      {t.over_sequence_len > 0 && (
        <Notice tone="warning">
          {t.over_sequence_len} row{t.over_sequence_len === 1 ? " is" : "s are"} longer than {t.sequence_len} tokens and
          will be cut short in training.
        </Notice>
      )}
    </section>
  );
}

const PAGE = 20;

export function Preview({ datasetId, problems, version }: { datasetId: string; problems: DatasetProblem[]; version: string }) {
  const client = useApi();
  const [offset, setOffset] = useState(0);
  const rows = useResource(
    (signal) =>
      client.get<ListOf<PreviewRow>>(
        `/api/v1/datasets/${encodeURIComponent(datasetId)}/preview?offset=${offset}&limit=${PAGE}`,
        signal,
      ),
    [client, datasetId, offset, version],
  );
  const byLine = new Map<number, DatasetProblem[]>();
  for (const p of problems) byLine.set(p.line, [...(byLine.get(p.line) ?? []), p]);
  const data = rows.data?.data ?? [];
  return (
    <section className="card" aria-labelledby="preview-title">
      <h2 id="preview-title">Preview</h2>
      <ErrorMessage message={rows.error} onRetry={rows.reload} />
      {rows.loading && !rows.data && <Spinner label="Loading the first rows…" />}
      {rows.data && data.length === 0 && <p className="muted">No rows to show.</p>}
      {data.length > 0 && (
        <ol className="preview" aria-label="Rows">
          {data.map((r) => {
            const found = byLine.get(r.line) ?? [];
            const bad = !!r.error || found.length > 0;
            return (
              <li key={r.line} className={bad ? "preview-row bad" : "preview-row"}>
                <div className="preview-meta">
                  <span>
                    {capital(r.unit)} {r.line}
                  </span>
                  {r.eval && <span className="badge badge-idle">held out</span>}
                </div>
                <RowView data={r.data} />
                {bad && (
                  <div className="alert alert-error row-problem" role="note">
                    {r.error && <p>{r.error}</p>}
                    {found.map((p, i) => (
                      <p key={i}>
                        {p.field ? `${p.field}: ` : ""}
                        {p.message} <span className="hint">{p.fix}</span>
                      </p>
                    ))}
                  </div>
                )}
              </li>
            );
          })}
        </ol>
      )}
      <div className="row-actions">
        <button type="button" className="button button-small" disabled={offset === 0} onClick={() => setOffset(Math.max(0, offset - PAGE))}>
          Previous rows
        </button>
        <button type="button" className="button button-small" disabled={data.length < PAGE} onClick={() => setOffset(offset + PAGE)}>
          Next rows
        </button>
      </div>
    </section>
  );
}

function short(value: unknown): string {
  const text = typeof value === "string" ? value : JSON.stringify(value);
  return text.length > 400 ? `${text.slice(0, 400)}…` : text;
}

/** One row: a conversation as turns, anything else as its fields. */
export function RowView({ data }: { data: Record<string, unknown> | null }) {
  if (!data) return <p className="muted">(this row could not be read)</p>;
  const turns = (data.messages ?? data.conversations) as unknown;
  if (Array.isArray(turns)) {
    return (
      <dl className="row-fields">
        {turns.map((t, i) => {
          const turn = (t ?? {}) as Record<string, unknown>;
          return (
            <div key={i}>
              <dt>{String(turn.role ?? turn.from ?? "?")}</dt>
              <dd>{short(turn.content ?? turn.value ?? "")}</dd>
            </div>
          );
        })}
      </dl>
    );
  }
  return (
    <dl className="row-fields">
      {Object.entries(data).map(([key, value]) => (
        <div key={key}>
          <dt>{key}</dt>
          <dd>{short(value)}</dd>
        </div>
      ))}
    </dl>
  );
}
