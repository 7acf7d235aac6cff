// The fine-tune wizard: a base model, a dataset, the goal in plain words, how thorough, an
// estimate of time and cost before anything starts, an advanced panel, start.

import { useEffect, useId, useMemo, useState, type FormEvent } from "react";
import { Link, useNavigate, useSearchParams } from "react-router-dom";
import { errorMessage, isAbort } from "../api/client";
import type { BaseModel, Credential, Dataset, Estimate, Job, ListOf } from "../api/types";
import { useApi } from "../auth/AuthContext";
import { CloudAccountPicker } from "../components/CloudAccountPicker";
import { ErrorMessage, Notice, PageHeader, ScrollingText, Spinner } from "../components/ui";
import { useResource } from "../lib/useResource";

export const GOALS = [
  { value: "sft", label: "Answer like my examples", description: "Supervised fine-tuning: learn from questions and the answers you wrote." },
  { value: "pretrain", label: "Learn my documents", description: "Continued pre-training: read your texts to pick up their facts and style." },
  { value: "dpo", label: "Prefer the better answer (DPO)", description: "From pairs of a chosen and a rejected answer, learn to give the chosen kind." },
  { value: "orpo", label: "Prefer the better answer (ORPO)", description: "Like DPO, in one pass and without a separate reference model." },
] as const;

export const PRESETS = [
  { value: "quick", label: "Quick trial", description: "A few dozen steps to check everything works." },
  { value: "balanced", label: "Balanced", description: "One pass over your data: a good first model." },
  { value: "thorough", label: "Thorough", description: "Three passes, gentler: better on small datasets, three times the cost." },
] as const;

export const METHODS = [
  { value: "lora", label: "LoRA", description: "Trains a small add-on (an adapter): fast, light, the usual choice." },
  { value: "qlora", label: "QLoRA", description: "LoRA on a compressed model: fits big models on smaller GPUs." },
  { value: "full", label: "Full", description: "Changes every weight: needs the most memory." },
] as const;

/** The goal that suits a dataset's format. */
export function goalFor(format: string | null | undefined): string {
  if (format === "preference") return "dpo";
  if (format === "text") return "pretrain";
  return "sft";
}

export function formatParameters(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(n >= 1e10 ? 0 : 1)}B`;
  if (n >= 1e6) return `${Math.round(n / 1e6)}M`;
  return n.toLocaleString();
}

const ADVANCED_FIELDS: { name: string; label: string; step: string; hint: string }[] = [
  { name: "max_steps", label: "Stop after this many steps", step: "1", hint: "Empty: as the preset plans." },
  { name: "epochs", label: "Passes over the data (epochs)", step: "0.1", hint: "" },
  { name: "learning_rate", label: "Learning rate", step: "any", hint: "How big each correction is." },
  { name: "sequence_len", label: "Longest example, in tokens", step: "1", hint: "Longer examples are cut." },
  { name: "micro_batch_size", label: "Examples read at once (batch size)", step: "1", hint: "" },
  { name: "gradient_accumulation_steps", label: "Batches added up per step", step: "1", hint: "Gradient accumulation." },
  { name: "lora_r", label: "LoRA rank", step: "1", hint: "The adapter's size." },
  { name: "eval_steps", label: "Measure on held-out rows every … steps", step: "1", hint: "" },
];

export function FineTune() {
  const client = useApi();
  const navigate = useNavigate();
  const [params] = useSearchParams();
  const catalogue = useResource(
    async (signal) => {
      const [bases, datasets, credentials] = await Promise.all([
        client.get<ListOf<BaseModel>>("/api/v1/base-models", signal),
        client.get<ListOf<Dataset>>("/api/v1/datasets", signal),
        client.get<ListOf<Credential>>("/api/v1/credentials", signal).catch(() => ({ data: [], count: 0 })),
      ]);
      return { bases: bases.data, datasets: datasets.data, credentials: credentials.data };
    },
    [client],
  );
  const ids = { name: useId(), dataset: useId(), provider: useId(), bench: useId() };
  const [base, setBase] = useState("");
  const [datasetId, setDatasetId] = useState(params.get("dataset") ?? "");
  const [goal, setGoal] = useState("");
  const [preset, setPreset] = useState("balanced");
  const [method, setMethod] = useState("lora");
  const [provider, setProvider] = useState<"local" | "aws" | "gcp">("local");
  const [credentialId, setCredentialId] = useState("");
  const [name, setName] = useState("");
  const [advanced, setAdvanced] = useState<Record<string, string>>({});
  const [benchmarkSample, setBenchmarkSample] = useState("20");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const bases = catalogue.data?.bases ?? [];
  const ready = (catalogue.data?.datasets ?? []).filter((d) => d.state === "ready");
  const chosenBase = base || (bases.find((b) => b.available_locally) ?? bases[0])?.id || "";
  const chosenDataset = ready.find((d) => d.id === datasetId) ?? ready[0];
  const chosenGoal = goal || goalFor(chosenDataset?.format);
  const credentials = (catalogue.data?.credentials ?? []).filter((c) => c.kind === provider);
  const chosenCredential = credentialId || credentials[0]?.id || "";

  const hyperparameters = useMemo(() => {
    const out: Record<string, number> = {};
    for (const [key, value] of Object.entries(advanced)) {
      if (value.trim() !== "" && Number.isFinite(Number(value))) out[key] = Number(value);
    }
    return out;
  }, [advanced]);

  // The estimate follows every choice (debounced a little).
  const [estimate, setEstimate] = useState<Estimate | null>(null);
  const [estimateError, setEstimateError] = useState<string | null>(null);
  const [estimating, setEstimating] = useState(false);
  useEffect(() => {
    if (!chosenBase || !chosenDataset) return;
    const controller = new AbortController();
    const timer = setTimeout(async () => {
      setEstimating(true);
      try {
        const body: Record<string, unknown> = {
          base_model: chosenBase,
          method,
          provider,
          dataset_id: chosenDataset.id,
          epochs: hyperparameters.epochs ?? (preset === "thorough" ? 3 : 1),
        };
        if (hyperparameters.sequence_len) body.sequence_len = hyperparameters.sequence_len;
        if (hyperparameters.micro_batch_size) body.micro_batch_size = hyperparameters.micro_batch_size;
        setEstimate(await client.post<Estimate>("/api/v1/estimates", body, controller.signal));
        setEstimateError(null);
      } catch (err) {
        if (!isAbort(err)) setEstimateError(errorMessage(err));
      } finally {
        if (!controller.signal.aborted) setEstimating(false);
      }
    }, 300);
    return () => {
      controller.abort();
      clearTimeout(timer);
    };
  }, [client, chosenBase, chosenDataset, method, provider, preset, hyperparameters]);

  // What the job would be, as the API takes it: for the config preview and for starting.
  const jobBody = (): Record<string, unknown> | null => {
    if (!chosenDataset) return null;
    const sample = Number(benchmarkSample) || 0;
    const body: Record<string, unknown> = {
      name: name.trim() || `${chosenDataset.name} on ${bases.find((b) => b.id === chosenBase)?.display_name ?? chosenBase}`,
      base_model: chosenBase,
      dataset_id: chosenDataset.id,
      stage: chosenGoal,
      method,
      provider,
      preset,
      hyperparameters,
      benchmark: sample > 0 ? "gsm8k" : "none",
      benchmark_sample: sample,
    };
    if (provider !== "local") body.credential_id = chosenCredential;
    return body;
  };

  // The exact Axolotl config the job would run with, written by the API without starting it.
  const [configYaml, setConfigYaml] = useState<string | null>(null);
  const [configError, setConfigError] = useState<string | null>(null);
  const [previewing, setPreviewing] = useState(false);
  const previewConfig = async () => {
    const body = jobBody();
    if (!body) return;
    setPreviewing(true);
    setConfigError(null);
    try {
      setConfigYaml((await client.post<Job & { config_yaml: string }>("/api/v1/jobs/preview", body)).config_yaml);
    } catch (err) {
      setConfigYaml(null);
      setConfigError(errorMessage(err));
    } finally {
      setPreviewing(false);
    }
  };

  const start = async (event: FormEvent) => {
    event.preventDefault();
    const body = jobBody();
    if (!body) return;
    setError(null);
    if (provider !== "local" && !chosenCredential) {
      setError(`Add a ${provider.toUpperCase()} account in Settings first.`);
      return;
    }
    setBusy(true);
    try {
      const job = await client.post<Job>("/api/v1/jobs", body);
      navigate(`/jobs/${encodeURIComponent(job.id)}`);
    } catch (err) {
      setError(errorMessage(err));
      setBusy(false);
    }
  };

  return (
    <>
      <PageHeader title="Fine-tune" intro="Teach a base model your task from your examples, in five choices." />
      <ErrorMessage message={catalogue.error} onRetry={catalogue.reload} />
      {catalogue.loading && !catalogue.data && <Spinner label="Loading models and datasets…" />}
      {catalogue.data && (
        <form className="form wizard" onSubmit={start}>
          <fieldset className="card">
            <legend>1. Base model</legend>
            <p className="hint">The model you start from. Smaller ones train faster and cheaper.</p>
            <div className="choice-grid">
              {bases.map((b) => (
                <label key={b.id} className={chosenBase === b.id ? "choice active" : "choice"}>
                  <input type="radio" name="base" value={b.id} checked={chosenBase === b.id} onChange={() => setBase(b.id)} />
                  <span className="choice-title">
                    {b.display_name} <span className="badge badge-idle">{formatParameters(b.parameters)} parameters</span>
                  </span>
                  <span className="choice-text">{b.good_for}</span>
                  <span className="hint">
                    {b.available_locally ? "Trains on this machine." : "Needs a cloud GPU."}
                    {b.gated ? " Its licence must be accepted on the hub first." : ""}
                  </span>
                </label>
              ))}
            </div>
          </fieldset>

          <fieldset className="card">
            <legend>2. Dataset</legend>
            {ready.length === 0 ? (
              <Notice tone="warning">
                No dataset is ready yet. <Link to="/datasets">Upload one</Link>; it is checked in a few seconds.
              </Notice>
            ) : (
              <div className="field">
                <label htmlFor={ids.dataset}>Your examples</label>
                <select
                  id={ids.dataset}
                  value={chosenDataset?.id ?? ""}
                  onChange={(e) => {
                    setDatasetId(e.target.value);
                    setGoal("");
                  }}
                >
                  {ready.map((d) => (
                    <option key={d.id} value={d.id}>
                      {d.name} ({d.rows.toLocaleString()} rows, {d.format ?? "?"})
                    </option>
                  ))}
                </select>
              </div>
            )}
          </fieldset>

          <fieldset className="card">
            <legend>3. Goal</legend>
            <div className="choice-grid">
              {GOALS.map((g) => (
                <label key={g.value} className={chosenGoal === g.value ? "choice active" : "choice"}>
                  <input type="radio" name="goal" value={g.value} checked={chosenGoal === g.value} onChange={() => setGoal(g.value)} />
                  <span className="choice-title">{g.label}</span>
                  <span className="choice-text">{g.description}</span>
                </label>
              ))}
            </div>
          </fieldset>

          <fieldset className="card">
            <legend>4. How thorough, and where</legend>
            <div className="choice-grid">
              {PRESETS.map((p) => (
                <label key={p.value} className={preset === p.value ? "choice active" : "choice"}>
                  <input type="radio" name="preset" value={p.value} checked={preset === p.value} onChange={() => setPreset(p.value)} />
                  <span className="choice-title">{p.label}</span>
                  <span className="choice-text">{p.description}</span>
                </label>
              ))}
            </div>
            <div className="grid-3">
              <div className="field">
                <label htmlFor={ids.provider}>Where it trains</label>
                <select id={ids.provider} value={provider} onChange={(e) => setProvider(e.target.value as typeof provider)}>
                  <option value="local">This machine</option>
                  <option value="aws">My AWS account (GPU)</option>
                  <option value="gcp">My Google Cloud account (GPU)</option>
                </select>
              </div>
              {provider !== "local" && (
                <CloudAccountPicker cloud={provider} accounts={credentials} value={chosenCredential} onChange={setCredentialId} />
              )}
              <div className="field">
                <label htmlFor={ids.name}>Name (optional)</label>
                <input id={ids.name} maxLength={200} value={name} onChange={(e) => setName(e.target.value)} placeholder="e.g. Support bot v1" />
              </div>
            </div>
          </fieldset>

          <details className="card advanced">
            <summary>Advanced settings</summary>
            <fieldset>
              <legend>Method</legend>
              <div className="choice-grid">
                {METHODS.map((m) => (
                  <label key={m.value} className={method === m.value ? "choice active" : "choice"}>
                    <input type="radio" name="method" value={m.value} checked={method === m.value} onChange={() => setMethod(m.value)} />
                    <span className="choice-title">{m.label}</span>
                    <span className="choice-text">{m.description}</span>
                  </label>
                ))}
              </div>
            </fieldset>
            <p className="hint">Leave a box empty to keep the preset's value.</p>
            <div className="grid-3">
              {ADVANCED_FIELDS.map((f) => (
                <AdvancedField
                  key={f.name}
                  field={f}
                  value={advanced[f.name] ?? ""}
                  onChange={(v) => setAdvanced((a) => ({ ...a, [f.name]: v }))}
                />
              ))}
              <div className="field">
                <label htmlFor={ids.bench}>Maths questions to compare base and tuned (GSM8K)</label>
                <input
                  id={ids.bench}
                  type="number"
                  min={0}
                  max={1319}
                  value={benchmarkSample}
                  onChange={(e) => setBenchmarkSample(e.target.value)}
                />
                <p className="hint">0: skip the comparison.</p>
              </div>
            </div>
            <div className="config-preview">
              <button type="button" className="button-quiet" onClick={previewConfig} disabled={previewing || !chosenDataset}>
                {previewing ? "Writing the config…" : configYaml ? "Refresh the Axolotl config" : "Show the Axolotl config"}
              </button>
              <p className="hint">The exact YAML the training would run with, for these choices. Nothing starts.</p>
              <ErrorMessage message={configError} />
              {configYaml && (
                <ScrollingText className="log" label="Axolotl config">
                  {configYaml}
                </ScrollingText>
              )}
            </div>
          </details>

          <section className="card" aria-labelledby="estimate-title" aria-live="polite">
            <h2 id="estimate-title">5. Estimate</h2>
            {!chosenDataset && <p className="muted">Choose a dataset to see how long it takes.</p>}
            {chosenDataset && estimating && !estimate && <Spinner label="Estimating time and cost…" />}
            <ErrorMessage message={estimateError} />
            {chosenDataset && estimate && (
              <div className="estimate">
                <p className="estimate-summary">{estimate.summary}</p>
                {hyperparameters.max_steps ? (
                  <p className="hint">
                    This is for the whole pass over your data; stopping after {hyperparameters.max_steps} steps makes it
                    shorter.
                  </p>
                ) : null}
                {estimate.warning && <Notice tone="warning">{estimate.warning}</Notice>}
                {!estimate.fits && <Notice tone="warning">This model does not fit where you chose to train it.</Notice>}
                {estimate.assumptions.length > 0 && (
                  <details>
                    <summary>How this was estimated</summary>
                    <ul>
                      {estimate.assumptions.map((a) => (
                        <li key={a}>{a}</li>
                      ))}
                    </ul>
                  </details>
                )}
              </div>
            )}
            <ErrorMessage message={error} />
            <button type="submit" className="button button-primary button-wide" disabled={busy || !chosenDataset || !chosenBase}>
              {busy ? "Starting…" : "Start fine-tuning"}
            </button>
          </section>
        </form>
      )}
    </>
  );
}

function AdvancedField({
  field,
  value,
  onChange,
}: {
  field: (typeof ADVANCED_FIELDS)[number];
  value: string;
  onChange: (value: string) => void;
}) {
  const id = useId();
  return (
    <div className="field">
      <label htmlFor={id}>{field.label}</label>
      <input id={id} type="number" min={0} step={field.step} value={value} onChange={(e) => onChange(e.target.value)} />
      {field.hint && <p className="hint">{field.hint}</p>}
    </div>
  );
}
