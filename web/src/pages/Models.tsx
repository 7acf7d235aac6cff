// Fine-tuned model versions with their lineage (base model, dataset, job) and metrics, and a
// way to deploy each.

import { Link } from "react-router-dom";
import type { Dataset, ListOf, ModelVersion } from "../api/types";
import { useApi } from "../auth/AuthContext";
import { EmptyState, ErrorMessage, formatDate, PageHeader, Spinner } from "../components/ui";
import { useResource } from "../lib/useResource";

const METRICS: [string, string, (v: number) => string][] = [
  ["final_loss", "Final loss", (v) => v.toFixed(3)],
  ["held_out_loss", "Held-out loss", (v) => v.toFixed(3)],
  ["base_score", "Base model score", (v) => `${Math.round(v * 100)}%`],
  ["tuned_score", "Tuned model score", (v) => `${Math.round(v * 100)}%`],
  ["steps", "Steps", (v) => v.toLocaleString()],
];

export function Models() {
  const client = useApi();
  const data = useResource(
    async (signal) => {
      const [versions, datasets] = await Promise.all([
        client.get<ListOf<ModelVersion>>("/api/v1/models", signal),
        client.get<ListOf<Dataset>>("/api/v1/datasets", signal).catch(() => ({ data: [], count: 0 })),
      ]);
      return { versions: versions.data, datasets: new Map(datasets.data.map((d) => [d.id, d.name])) };
    },
    [client],
  );
  const versions = data.data?.versions ?? [];
  return (
    <>
      <PageHeader title="Models" intro="The models your fine-tuning jobs produced, where each came from, and how well it did." />
      <ErrorMessage message={data.error} onRetry={data.reload} />
      {data.loading && !data.data && <Spinner label="Loading your models…" />}
      {data.data && versions.length === 0 && (
        <EmptyState title="No models yet">
          <p>
            A model appears here when a fine-tuning job succeeds. <Link to="/fine-tune">Start one</Link>.
          </p>
        </EmptyState>
      )}
      <ul className="plain-list deployments" aria-label="Your models">
        {versions.map((v) => (
          <li key={v.id}>
            <article className="card" aria-labelledby={`model-${v.id}`}>
              <header className="deployment-head">
                <div>
                  <h2 id={`model-${v.id}`}>{v.name}</h2>
                  <p className="muted">
                    {v.method.toUpperCase()} · created {formatDate(v.created_at)}
                  </p>
                </div>
                <Link className="button button-primary" to={`/deployments?version=${encodeURIComponent(v.id)}`}>
                  Deploy
                </Link>
              </header>
              <dl className="lineage" aria-label="Where it came from">
                <div>
                  <dt>Base model</dt>
                  <dd>{v.base_model}</dd>
                </div>
                <div>
                  <dt>Dataset</dt>
                  <dd>
                    {v.hub_dataset ? (
                      v.hub_dataset
                    ) : v.dataset_id ? (
                      <Link to={`/datasets/${encodeURIComponent(v.dataset_id)}`}>
                        {data.data?.datasets.get(v.dataset_id) ?? "a deleted dataset"}
                      </Link>
                    ) : (
                      "—"
                    )}
                  </dd>
                </div>
                <div>
                  <dt>Job</dt>
                  <dd>
                    <Link to={`/jobs/${encodeURIComponent(v.job_id)}`}>see the training run</Link>
                  </dd>
                </div>
              </dl>
              <dl className="stats" aria-label="Metrics">
                {METRICS.filter(([key]) => typeof v.metrics?.[key] === "number").map(([key, label, show]) => (
                  <div key={key}>
                    <dt>{label}</dt>
                    <dd>{show(v.metrics![key] as number)}</dd>
                  </div>
                ))}
              </dl>
              {v.has_adapter && <p className="hint">Trained as a LoRA adapter: it can be served as merged weights or as an adapter on its base model.</p>}
            </article>
          </li>
        ))}
      </ul>
    </>
  );
}
