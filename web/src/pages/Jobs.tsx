// Fine-tuning jobs: the list, and one job live (its SSE events): the stage stepper, the loss
// chart, speed, the log tail, cancel, and the base-vs-tuned report when it is done.

import { useEffect, useEffectEvent, useReducer, useState } from "react";
import { Link, useParams } from "react-router-dom";
import { errorMessage, isAbort, type ApiClient } from "../api/client";
import { readSse } from "../api/sse";
import type { Evaluation, Job, ListOf } from "../api/types";
import { useApi } from "../auth/AuthContext";
import { LossChart, type Point } from "../components/LossChart";
import { EmptyState, ErrorMessage, formatDate, LogTail, Notice, PageHeader, ScrollingText, Spinner, StatusBadge } from "../components/ui";
import { useResource } from "../lib/useResource";

export const STAGES: { state: string; label: string }[] = [
  { state: "queued", label: "Waiting for a machine" },
  { state: "validating", label: "Checking the data" },
  { state: "provisioning", label: "Preparing the machine" },
  { state: "training", label: "Training" },
  { state: "evaluating", label: "Evaluating" },
  { state: "uploading", label: "Saving the model" },
  { state: "succeeded", label: "Done" },
];
const ENDED = new Set(["succeeded", "failed", "cancelled"]);

export function Jobs() {
  const client = useApi();
  const list = useResource(
    (signal) => client.get<ListOf<Job>>("/api/v1/jobs", signal),
    [client],
    (data) => (data?.data.some((j) => !ENDED.has(j.state)) ? 3000 : 15000),
  );
  const jobs = list.data?.data ?? [];
  return (
    <>
      <PageHeader
        title="Jobs"
        intro="Your fine-tuning runs and how far each has got."
        actions={
          <Link className="button button-primary" to="/fine-tune">
            New fine-tune
          </Link>
        }
      />
      <ErrorMessage message={list.error} onRetry={list.reload} />
      {list.loading && !list.data && <Spinner label="Loading jobs…" />}
      {list.data && jobs.length === 0 && (
        <EmptyState title="No jobs yet">
          <p>
            Start one from <Link to="/fine-tune">Fine-tune</Link>.
          </p>
        </EmptyState>
      )}
      {jobs.length > 0 && (
        <div className="table-wrap">
          <table>
            <caption className="visually-hidden">Your fine-tuning jobs</caption>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">State</th>
                <th scope="col">Base model</th>
                <th scope="col">Progress</th>
                <th scope="col">Started</th>
              </tr>
            </thead>
            <tbody>
              {jobs.map((j) => (
                <tr key={j.id}>
                  <td data-label="Name">
                    <Link to={`/jobs/${encodeURIComponent(j.id)}`}>{j.name}</Link>
                  </td>
                  <td data-label="State">
                    <StatusBadge state={j.state} />
                  </td>
                  <td data-label="Base model">{j.base_model}</td>
                  <td data-label="Progress">{j.max_steps ? `${j.step} / ${j.max_steps} steps` : "—"}</td>
                  <td data-label="Started">{formatDate(j.created_at)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </>
  );
}

// --- the live view ----------------------------------------------------------------------------

export interface LiveState {
  state: string | null;
  step: number;
  maxSteps: number;
  loss: Point[];
  evalLoss: Point[];
  tokensPerSecond: number | null;
  logs: string[];
  lastId: string | null;
}

export const INITIAL_LIVE: LiveState = {
  state: null,
  step: 0,
  maxSteps: 0,
  loss: [],
  evalLoss: [],
  tokensPerSecond: null,
  logs: [],
  lastId: null,
};
const LOG_LINES = 200;

const num = (v: unknown): number | null => (typeof v === "number" && Number.isFinite(v) ? v : null);

function addPoint(points: Point[], point: Point): Point[] {
  return [...points.filter((p) => p.step !== point.step), point].sort((a, b) => a.step - b.step);
}

/** Fold one SSE event of a job into what the page shows. */
export function liveReducer(live: LiveState, event: { event: string; data: string; id?: string }): LiveState {
  let data: Record<string, unknown>;
  try {
    data = JSON.parse(event.data) as Record<string, unknown>;
  } catch {
    return live;
  }
  const next = { ...live, lastId: event.id ?? live.lastId };
  switch (event.event) {
    case "state":
      return { ...next, state: typeof data.state === "string" ? data.state : live.state };
    case "progress": {
      const step = num(data.step) ?? live.step;
      const loss = num(data.loss);
      return {
        ...next,
        step,
        maxSteps: num(data.max_steps) ?? live.maxSteps,
        loss: loss === null ? live.loss : addPoint(live.loss, { step, value: loss }),
        tokensPerSecond: num(data.tokens_per_second) ?? live.tokensPerSecond,
      };
    }
    case "eval": {
      const value = num(data.eval_loss);
      const step = num(data.step) ?? live.step;
      return value === null ? next : { ...next, evalLoss: addPoint(live.evalLoss, { step, value }) };
    }
    case "log": {
      const lines = String(data.line ?? "").split("\n").filter(Boolean);
      return { ...next, logs: [...live.logs, ...lines].slice(-LOG_LINES) };
    }
    default:
      return next;
  }
}

type Action = { type: "event"; event: { event: string; data: string; id?: string } } | { type: "reset" };

/** Follow a job's events until it ends; reconnects (with Last-Event-ID) if the stream drops. */
export function useJobEvents(client: ApiClient, jobId: string, onEnded: () => void): LiveState {
  const [live, dispatch] = useReducer(
    (s: LiveState, a: Action) => (a.type === "reset" ? INITIAL_LIVE : liveReducer(s, a.event)),
    INITIAL_LIVE,
  );
  // The latest callback, called without restarting the stream when a new one comes.
  const notifyEnded = useEffectEvent(onEnded);
  useEffect(() => {
    dispatch({ type: "reset" });
    const controller = new AbortController();
    let lastId: string | null = null;
    let ended = false;
    const run = async () => {
      for (let attempt = 0; !controller.signal.aborted && !ended && attempt < 20; attempt++) {
        try {
          const response = await client.fetch(`/api/v1/jobs/${encodeURIComponent(jobId)}/events`, {
            signal: controller.signal,
            headers: { accept: "text/event-stream", ...(lastId ? { "Last-Event-ID": lastId } : {}) },
          });
          if (!response.body) return;
          for await (const event of readSse(response.body, controller.signal)) {
            if (event.id) lastId = event.id;
            dispatch({ type: "event", event });
            if (event.event === "state") {
              try {
                if (ENDED.has((JSON.parse(event.data) as { state?: string }).state ?? "")) ended = true;
              } catch {
                // not JSON: ignore
              }
            }
          }
          if (ended) notifyEnded();
          else await new Promise((r) => setTimeout(r, 1000)); // closed early: reconnect
        } catch (err) {
          if (isAbort(err) || controller.signal.aborted) return;
          await new Promise((r) => setTimeout(r, 2000));
        }
      }
    };
    void run();
    return () => controller.abort();
  }, [client, jobId]);
  return live;
}

export function JobDetail() {
  const { id = "" } = useParams();
  const client = useApi();
  const path = `/api/v1/jobs/${encodeURIComponent(id)}`;
  const job = useResource((signal) => client.get<Job>(path, signal), [client, path]);
  const reload = job.reload;
  const live = useJobEvents(client, id, reload);
  const [cancelling, setCancelling] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const j = job.data;
  const state = live.state ?? j?.state ?? "queued";
  const ended = ENDED.has(state);
  const step = Math.max(live.step, j?.step ?? 0);
  const maxSteps = live.maxSteps || j?.max_steps || 0;

  const cancel = async () => {
    if (!j || !window.confirm(`Cancel "${j.name}"? Its progress is lost and its machine is released.`)) return;
    setError(null);
    setCancelling(true);
    try {
      await client.post(`${path}/cancel`);
      reload();
    } catch (err) {
      setError(errorMessage(err));
    } finally {
      setCancelling(false);
    }
  };

  return (
    <>
      <p>
        <Link to="/jobs">← All jobs</Link>
      </p>
      <ErrorMessage message={job.error} onRetry={job.reload} />
      {job.loading && !j && <Spinner label="Loading the job…" />}
      {j && (
        <>
          <PageHeader
            title={j.name}
            intro={`${j.base_model} · ${j.stage ?? "sft"} · ${j.method ?? "lora"} · ${j.provider === "local" ? "this machine" : j.provider ?? ""} · started ${formatDate(j.created_at)}`}
            actions={
              <>
                <StatusBadge state={state} />
                {!ended && (
                  <button type="button" className="button button-danger" onClick={cancel} disabled={cancelling || j.cancel_requested}>
                    {cancelling || j.cancel_requested ? "Cancelling…" : "Cancel"}
                  </button>
                )}
              </>
            }
          />
          <ErrorMessage message={error} />
          <Stepper state={state} />
          {state === "failed" && (
            <div className="alert alert-error" role="alert">
              {j.failure_reason ?? "The job failed."}
            </div>
          )}
          {state === "cancelled" && <Notice>This job was cancelled.</Notice>}
          {state === "succeeded" && j.model_version_id && (
            <Notice tone="success">
              Your model is ready.{" "}
              <Link to={`/deployments?version=${encodeURIComponent(j.model_version_id)}`}>Deploy it</Link> or see it in{" "}
              <Link to="/models">Models</Link>.
            </Notice>
          )}
          <section className="card" aria-labelledby="progress-title">
            <h2 id="progress-title">Training</h2>
            <dl className="stats">
              <div>
                <dt>Step</dt>
                <dd>{maxSteps ? `${step} / ${maxSteps}` : step || "—"}</dd>
              </div>
              <div>
                <dt>Loss</dt>
                <dd>{fmt(live.loss.at(-1)?.value ?? j.last_loss)}</dd>
              </div>
              <div>
                <dt>Held-out loss</dt>
                <dd>{fmt(live.evalLoss.at(-1)?.value ?? j.last_eval_loss)}</dd>
              </div>
              <div>
                <dt>Speed</dt>
                <dd>{live.tokensPerSecond !== null ? `${Math.round(live.tokensPerSecond).toLocaleString()} tokens/s` : "—"}</dd>
              </div>
            </dl>
            {maxSteps > 0 && (
              <progress className="step-progress" max={maxSteps} value={step} aria-label="Training steps done" />
            )}
            <LossChart
              maxSteps={maxSteps}
              series={[
                { name: "Training loss", points: live.loss, className: "series-loss" },
                { name: "Held-out loss", points: live.evalLoss, className: "series-eval" },
              ]}
            />
            <p className="hint">Loss measures how far the model's answers are from your examples: lower is better.</p>
          </section>
          {j.evaluation && <EvaluationReport evaluation={j.evaluation} />}
          <section className="card" aria-labelledby="log-title">
            <h2 id="log-title">Log</h2>
            {live.logs.length === 0 ? (
              <p className="muted">{ended ? "No log lines." : "Log lines appear here as the job writes them."}</p>
            ) : (
              <LogTail lines={live.logs} label="Job log" />
            )}
          </section>
          <ConfigPanel path={`${path}/config`} />
        </>
      )}
    </>
  );
}

const fmt = (v: number | null | undefined) => (v === null || v === undefined ? "—" : v.toFixed(3));

export function Stepper({ state }: { state: string }) {
  const index = STAGES.findIndex((s) => s.state === state);
  const stopped = state === "failed" || state === "cancelled";
  return (
    <ol className="stepper" aria-label="Stages">
      {STAGES.map((s, i) => {
        const status =
          state === "succeeded" || (index >= 0 && i < index) ? "done" : i === index ? "current" : "todo";
        return (
          <li key={s.state} className={`step step-${status}`} aria-current={status === "current" ? "step" : undefined}>
            <span className="step-dot" aria-hidden="true">
              {status === "done" ? "✓" : i + 1}
            </span>
            <span>{s.label}</span>
            <span className="visually-hidden">{status === "done" ? " (done)" : status === "current" ? " (now)" : ""}</span>
          </li>
        );
      })}
      {stopped && (
        <li className="step step-stopped" aria-current="step">
          <span className="step-dot" aria-hidden="true">
            ✕
          </span>
          <span>{state === "failed" ? "Failed" : "Cancelled"}</span>
        </li>
      )}
    </ol>
  );
}

const pct = (v: number | null) => (v === null ? "—" : `${Math.round(v * 100)}%`);

export function EvaluationReport({ evaluation: e }: { evaluation: Evaluation }) {
  const base = e.details.base_examples ?? [];
  const tuned = e.details.tuned_examples ?? [];
  return (
    <section className="card" aria-labelledby="eval-title">
      <h2 id="eval-title">Evaluation: base vs tuned</h2>
      {e.base_score !== null || e.tuned_score !== null ? (
        <>
          <p className="hint">
            {e.sample} {e.benchmark.toUpperCase()} maths question{e.sample === 1 ? "" : "s"}, answered by the base model and by
            your tuned model; a right final number counts.
          </p>
          <dl className="stats" aria-label="Scores">
            <div>
              <dt>Base model</dt>
              <dd>{pct(e.base_score)}</dd>
            </div>
            <div>
              <dt>Tuned model</dt>
              <dd>{pct(e.tuned_score)}</dd>
            </div>
            <div>
              <dt>Held-out loss</dt>
              <dd>{fmt(e.held_out_loss)}</dd>
            </div>
          </dl>
        </>
      ) : (
        <p>
          No benchmark was run. Held-out loss: <strong>{fmt(e.held_out_loss)}</strong>.
        </p>
      )}
      {(base.length > 0 || tuned.length > 0) && (
        <details>
          <summary>Example answers</summary>
          <div className="table-wrap">
            <table>
              <thead>
                <tr>
                  <th scope="col">Question</th>
                  <th scope="col">Expected</th>
                  <th scope="col">Base</th>
                  <th scope="col">Tuned</th>
                </tr>
              </thead>
              <tbody>
                {(tuned.length ? tuned : base).map((ex, i) => (
                  <tr key={i}>
                    <td data-label="Question">{ex.question}</td>
                    <td data-label="Expected">{ex.expected}</td>
                    <td data-label="Base">
                      {base[i] ? `${base[i].correct ? "✓" : "✗"} ${base[i].answer}` : "—"}
                    </td>
                    <td data-label="Tuned">{tuned[i] ? `${tuned[i].correct ? "✓" : "✗"} ${tuned[i].answer}` : "—"}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </details>
      )}
    </section>
  );
}

function ConfigPanel({ path }: { path: string }) {
  const client = useApi();
  const [open, setOpen] = useState(false);
  const [text, setText] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    if (!open || text !== null) return;
    const controller = new AbortController();
    client
      .fetch(path, { signal: controller.signal, headers: { accept: "application/yaml" } })
      .then((r) => r.text())
      .then(setText)
      .catch((err) => {
        if (!isAbort(err)) setError(errorMessage(err));
      });
    return () => controller.abort();
  }, [client, open, path, text]);
  return (
    <details className="card advanced" onToggle={(e) => setOpen((e.target as HTMLDetailsElement).open)}>
      <summary>Axolotl config (advanced)</summary>
      <p className="hint">The exact YAML this job trains with; useful to repeat the run by hand with Axolotl.</p>
      <ErrorMessage message={error} />
      {text === null && !error && open && <Spinner label="Loading the config…" />}
      {text !== null && (
        <ScrollingText className="log" label="Axolotl config">
          {text}
        </ScrollingText>
      )}
    </details>
  );
}
