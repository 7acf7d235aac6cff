import { Link } from "react-router-dom";
import { errorMessage } from "../api/client";
import type { Dataset, Deployment, Job, KbDocument, KnowledgeBase, ListOf, ModelVersion } from "../api/types";
import { useApi, useAuth } from "../auth/AuthContext";
import { ErrorMessage, PageHeader, Spinner } from "../components/ui";
import { useResource } from "../lib/useResource";

export interface Counts {
  datasets: number | null;
  jobs: number | null;
  runningJobs: number | null;
  models: number | null;
  deployments: number | null;
  readyDeployments: number | null;
  knowledgeBases: number | null;
  /** The first knowledge base with an indexed document, to ask straight away. */
  askableKb?: string | null;
}

const FINISHED_JOB = new Set(["succeeded", "failed", "cancelled"]);
const LIVE_DEPLOYMENT = new Set(["pending", "starting", "ready"]);

export interface NextStep {
  title: string;
  text: string;
  to: string;
  action: string;
  other?: { to: string; action: string };
}

/** What to do next, from what the user has so far. */
export function nextStep(c: Counts): NextStep {
  if (c.readyDeployments) {
    return {
      title: "Your model is ready",
      text: "Talk to it in the chat, or call it from your own code with an API key.",
      to: "/chat",
      action: "Open the chat",
    };
  }
  if (c.deployments && c.deployments > 0 && c.readyDeployments === 0) {
    return {
      title: "A deployment is on its way",
      text: "Follow it on the Deployments page; once it is ready you can chat with it.",
      to: "/deployments",
      action: "See deployments",
    };
  }
  if (c.models) {
    return {
      title: "Deploy your fine-tuned model",
      text: "Put it behind an API you can chat with and call from code.",
      to: "/deployments",
      action: "Deploy a model",
    };
  }
  if (c.runningJobs) {
    return {
      title: "Your fine-tune is running",
      text: "Watch its progress; the model appears under Models when it is done.",
      to: "/jobs",
      action: "Watch the job",
    };
  }
  if (c.datasets) {
    return {
      title: "Fine-tune a model on your data",
      text: "Pick a base model and a preset; Forgeline does the rest.",
      to: "/fine-tune",
      action: "Start a fine-tune",
    };
  }
  return {
    title: "Start with your data",
    text: "Upload examples of what you want the model to do (JSONL, CSV or Parquet). Or try chatting with a ready-made base model first.",
    to: "/datasets",
    action: "Upload a dataset",
    other: { to: "/deployments", action: "Try a ready-made model" },
  };
}

/** The other path, which needs no training: documents in a knowledge base, answered with
 * citations by a deployed model (a ready-made base model will do). */
export function documentsStep(c: Counts): NextStep | null {
  if (c.knowledgeBases === null) return null;
  if (!c.knowledgeBases) {
    return {
      title: "Ask questions about your documents",
      text: "Put your PDFs, Word or text files in a knowledge base; a model answers from them and cites the page.",
      to: "/knowledge-bases",
      action: "Add your documents",
    };
  }
  if (!c.askableKb) {
    return {
      title: "Your documents are being read",
      text: "Once a document is indexed you can ask about it. Follow it on its knowledge base.",
      to: "/knowledge-bases",
      action: "See knowledge bases",
    };
  }
  if (!c.readyDeployments) {
    return {
      title: "Deploy a model to ask your documents",
      text: "A ready-made base model is enough to answer from your documents.",
      to: "/deployments",
      action: "Deploy a model",
    };
  }
  return {
    title: "Ask your documents",
    text: "Answers cite the document and page they come from.",
    to: `/chat?kb=${encodeURIComponent(c.askableKb)}`,
    action: "Ask your documents",
  };
}

async function count<T>(load: Promise<ListOf<T>>): Promise<T[] | null> {
  try {
    return (await load).data;
  } catch {
    return null;
  }
}

export function Home() {
  const client = useApi();
  const { session } = useAuth();
  const { data, error, loading, reload } = useResource(async (signal) => {
    const [datasets, jobs, models, deployments, kbs] = await Promise.all([
      count(client.get<ListOf<Dataset>>("/api/v1/datasets", signal)),
      count(client.get<ListOf<Job>>("/api/v1/jobs", signal)),
      count(client.get<ListOf<ModelVersion>>("/api/v1/models", signal)),
      count(client.get<ListOf<Deployment>>("/api/v1/deployments", signal)),
      count(client.get<ListOf<KnowledgeBase>>("/api/v1/kbs", signal)),
    ]);
    // Which knowledge base has something to answer from (only when it matters for the step).
    let askableKb: string | null = null;
    for (const kb of kbs ?? []) {
      const docs = await count(client.get<ListOf<KbDocument>>(`/api/v1/kbs/${encodeURIComponent(kb.id)}/documents`, signal));
      if (docs?.some((d) => d.state === "indexed")) {
        askableKb = kb.id;
        break;
      }
    }
    const counts: Counts = {
      datasets: datasets?.length ?? null,
      jobs: jobs?.length ?? null,
      runningJobs: jobs ? jobs.filter((j) => !FINISHED_JOB.has(j.state)).length : null,
      models: models?.length ?? null,
      deployments: deployments ? deployments.filter((d) => LIVE_DEPLOYMENT.has(d.state)).length : null,
      readyDeployments: deployments ? deployments.filter((d) => d.state === "ready").length : null,
      knowledgeBases: kbs?.length ?? null,
      askableKb,
    };
    if (Object.values(counts).every((v) => v === null)) {
      // nothing answered: say why, from one of the calls
      await client.get("/api/v1/datasets", signal).catch((err: unknown) => {
        throw new Error(errorMessage(err));
      });
    }
    return counts;
  }, [client]);

  const tiles: { label: string; value: number | null | undefined; to: string; note?: string }[] = [
    { label: "Datasets", value: data?.datasets, to: "/datasets" },
    {
      label: "Fine-tuning jobs",
      value: data?.jobs,
      to: "/jobs",
      note: data?.runningJobs ? `${data.runningJobs} running` : undefined,
    },
    { label: "Models", value: data?.models, to: "/models" },
    {
      label: "Deployments",
      value: data?.deployments,
      to: "/deployments",
      note: data?.readyDeployments ? `${data.readyDeployments} ready` : undefined,
    },
    { label: "Knowledge bases", value: data?.knowledgeBases, to: "/knowledge-bases" },
  ];
  const step = data ? nextStep(data) : null;
  const documents = data ? documentsStep(data) : null;

  return (
    <>
      <PageHeader title="Home" intro={`Signed in as ${session?.user.email ?? ""}.`} />
      <ErrorMessage message={error} onRetry={reload} />
      {loading && !data && <Spinner label="Loading what you have…" />}
      {step && (
        <section className="card next-step" aria-labelledby="next-step-title">
          <p className="eyebrow">Next step</p>
          <h2 id="next-step-title">{step.title}</h2>
          <p>{step.text}</p>
          <div className="row-actions">
            <Link className="button button-primary" to={step.to}>
              {step.action}
            </Link>
            {step.other && (
              <Link className="button" to={step.other.to}>
                {step.other.action}
              </Link>
            )}
          </div>
        </section>
      )}
      {documents && (
        <section className="card next-step next-step-secondary" aria-labelledby="documents-step-title">
          <p className="eyebrow">Your documents</p>
          <h2 id="documents-step-title">{documents.title}</h2>
          <p>{documents.text}</p>
          <div className="row-actions">
            <Link className="button" to={documents.to}>
              {documents.action}
            </Link>
          </div>
        </section>
      )}
      {data && (
        <section aria-label="What you have">
          <ul className="tiles">
            {tiles.map((tile) => (
              <li key={tile.label}>
                <Link to={tile.to} className="tile">
                  <span className="tile-value">{tile.value ?? "—"}</span>
                  <span className="tile-label">{tile.label}</span>
                  {tile.note && <span className="tile-note">{tile.note}</span>}
                  {tile.value === null && <span className="tile-note">could not be loaded</span>}
                </Link>
              </li>
            ))}
          </ul>
        </section>
      )}
    </>
  );
}
