// Read-only lists of what the user has; the flows that create these (upload, fine-tune,
// documents) come with the next part of the web client.

import type { ReactNode } from "react";
import { Link } from "react-router-dom";
import type { Dataset, Job, KnowledgeBase, ListOf, ModelVersion } from "../api/types";
import { useApi } from "../auth/AuthContext";
import { EmptyState, ErrorMessage, formatDate, Notice, PageHeader, Spinner, StatusBadge } from "../components/ui";
import { useResource } from "../lib/useResource";

interface Column<T> {
  header: string;
  cell: (row: T) => ReactNode;
}

function ListPage<T extends { id: string }>(props: {
  title: string;
  intro: string;
  path: string;
  columns: Column<T>[];
  empty: ReactNode;
  comingSoon: string;
  pollMs?: number;
}) {
  const client = useApi();
  const { data, error, loading, reload } = useResource(
    (signal) => client.get<ListOf<T>>(props.path, signal),
    [client, props.path],
    props.pollMs,
  );
  return (
    <>
      <PageHeader title={props.title} intro={props.intro} />
      <Notice>{props.comingSoon}</Notice>
      <ErrorMessage message={error} onRetry={reload} />
      {loading && !data && <Spinner label={`Loading ${props.title.toLowerCase()}…`} />}
      {data && data.data.length === 0 && <EmptyState title={`No ${props.title.toLowerCase()} yet`}>{props.empty}</EmptyState>}
      {data && data.data.length > 0 && (
        <div className="table-wrap">
          <table>
            <thead>
              <tr>
                {props.columns.map((c) => (
                  <th key={c.header} scope="col">
                    {c.header}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {data.data.map((row) => (
                <tr key={row.id}>
                  {props.columns.map((c) => (
                    <td key={c.header} data-label={c.header}>
                      {c.cell(row)}
                    </td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </>
  );
}

export function Datasets() {
  return (
    <ListPage<Dataset>
      title="Datasets"
      intro="Examples of what you want your model to do. Each file is checked row by row."
      path="/api/v1/datasets"
      pollMs={5000}
      comingSoon="Uploading from the browser is coming soon; datasets uploaded through the API appear here."
      empty={<p>Upload a JSONL, CSV or Parquet file of examples to get started.</p>}
      columns={[
        { header: "Name", cell: (d) => d.name },
        { header: "State", cell: (d) => <StatusBadge state={d.state} /> },
        { header: "Format", cell: (d) => d.format ?? "—" },
        { header: "Rows", cell: (d) => d.rows.toLocaleString() },
        { header: "Uploaded", cell: (d) => formatDate(d.created_at) },
      ]}
    />
  );
}

export function Jobs() {
  return (
    <ListPage<Job>
      title="Jobs"
      intro="Your fine-tuning runs and how far each has got."
      path="/api/v1/jobs"
      pollMs={5000}
      comingSoon="Live progress (loss, logs) is coming soon; this list refreshes by itself."
      empty={
        <p>
          Start one from <Link to="/fine-tune">Fine-tune</Link>.
        </p>
      }
      columns={[
        { header: "Name", cell: (j) => j.name },
        { header: "State", cell: (j) => <StatusBadge state={j.state} /> },
        { header: "Base model", cell: (j) => j.base_model },
        { header: "Progress", cell: (j) => (j.max_steps ? `${j.step} / ${j.max_steps} steps` : "—") },
        { header: "Started", cell: (j) => formatDate(j.created_at) },
      ]}
    />
  );
}

export function Models() {
  return (
    <ListPage<ModelVersion>
      title="Models"
      intro="The models your fine-tuning jobs produced."
      path="/api/v1/models"
      comingSoon="Comparing versions and their scores is coming soon."
      empty={<p>A model appears here when a fine-tuning job succeeds.</p>}
      columns={[
        { header: "Name", cell: (m) => m.name },
        { header: "Base model", cell: (m) => m.base_model },
        { header: "Method", cell: (m) => m.method },
        { header: "Created", cell: (m) => formatDate(m.created_at) },
        {
          header: "",
          cell: () => (
            <Link to="/deployments" className="button button-small">
              Deploy
            </Link>
          ),
        },
      ]}
    />
  );
}

export function KnowledgeBases() {
  return (
    <ListPage<KnowledgeBase>
      title="Knowledge bases"
      intro="Folders of your documents that the chat can answer from, with sources."
      path="/api/v1/kbs"
      comingSoon="Creating knowledge bases and uploading documents from the browser is coming soon."
      empty={<p>Knowledge bases created through the API appear here.</p>}
      columns={[
        { header: "Name", cell: (k) => k.name },
        { header: "Documents live in", cell: (k) => (k.external ? "Your own bucket" : "Forgeline") },
        { header: "Created", cell: (k) => formatDate(k.created_at) },
      ]}
    />
  );
}

export function FineTune() {
  return (
    <>
      <PageHeader title="Fine-tune" intro="Teach a base model your task from your examples." />
      <Notice>
        The guided fine-tuning form is coming soon. Meanwhile you can deploy a base model from{" "}
        <Link to="/deployments">Deployments</Link> and chat with it.
      </Notice>
    </>
  );
}
