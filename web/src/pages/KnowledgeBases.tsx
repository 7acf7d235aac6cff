// Knowledge bases: create one, upload and delete documents, and watch each document's
// indexing state live (the list refreshes while the page is open, so documents put straight
// into the bucket appear by themselves).

import { useId, useState, type FormEvent } from "react";
import { Link, useNavigate, useParams } from "react-router-dom";
import { errorMessage, isAbort, type ApiClient } from "../api/client";
import type { KbDocument, KnowledgeBase, ListOf, UploadResult } from "../api/types";
import { formatBytes, uploadWithProgress } from "../api/upload";
import { useApi } from "../auth/AuthContext";
import { DropZone, ProgressBar } from "../components/DropZone";
import { EmptyState, ErrorMessage, formatDate, Notice, PageHeader, Spinner, StatusBadge } from "../components/ui";
import { useResource } from "../lib/useResource";

const DOCUMENT_TYPES = ".pdf,.txt,.md,.markdown,.docx,.html,.htm,.csv,.json,.zip";

/** Fast while something is being indexed, and still every 5 s to catch bucket changes. */
export const documentsPoll = (list: ListOf<KbDocument> | undefined) =>
  list?.data.some((d) => d.state === "pending") ? 1500 : 5000;

export function KnowledgeBases() {
  const client = useApi();
  const navigate = useNavigate();
  const kbs = useResource((signal) => client.get<ListOf<KnowledgeBase>>("/api/v1/kbs", signal), [client]);
  const id = useId();
  const [name, setName] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const create = async (event: FormEvent) => {
    event.preventDefault();
    setError(null);
    setBusy(true);
    try {
      const kb = await client.post<KnowledgeBase>("/api/v1/kbs", { name: name.trim() });
      navigate(`/knowledge-bases/${encodeURIComponent(kb.id)}`);
    } catch (err) {
      setError(errorMessage(err));
      setBusy(false);
    }
  };

  const list = kbs.data?.data ?? [];
  return (
    <>
      <PageHeader title="Knowledge bases" intro="Folders of your documents that the chat can answer from, citing its sources." />
      <section className="card" aria-labelledby={`${id}-title`}>
        <h2 id={`${id}-title`}>New knowledge base</h2>
        <form className="inline-form" onSubmit={create}>
          <div className="field">
            <label htmlFor={id}>Name</label>
            <input id={id} required maxLength={100} value={name} onChange={(e) => setName(e.target.value)} placeholder="e.g. Annual reports" />
          </div>
          <button type="submit" className="button button-primary" disabled={busy || !name.trim()}>
            {busy ? "Creating…" : "Create"}
          </button>
        </form>
        <ErrorMessage message={error} />
      </section>
      <ErrorMessage message={kbs.error} onRetry={kbs.reload} />
      {kbs.loading && !kbs.data && <Spinner label="Loading knowledge bases…" />}
      {kbs.data && list.length === 0 && (
        <EmptyState title="No knowledge bases yet">
          <p>Create one above, then add your documents to it.</p>
        </EmptyState>
      )}
      {list.length > 0 && (
        <div className="table-wrap">
          <table>
            <caption className="visually-hidden">Your knowledge bases</caption>
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Documents live in</th>
                <th scope="col">Created</th>
              </tr>
            </thead>
            <tbody>
              {list.map((k) => (
                <tr key={k.id}>
                  <td data-label="Name">
                    <Link to={`/knowledge-bases/${encodeURIComponent(k.id)}`}>{k.name}</Link>
                  </td>
                  <td data-label="Documents live in">{k.external ? "Your own bucket" : "Forgeline"}</td>
                  <td data-label="Created">{formatDate(k.created_at)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </>
  );
}

/** Fetch a document with the session and open it in a new tab (PDFs at the cited page). */
export async function openDocument(client: ApiClient, kbId: string, documentId: string, page?: number): Promise<void> {
  // Open the tab now, while the click still counts as the user's: after an await, browsers
  // block pop-ups.
  const tab = window.open("", "_blank");
  try {
    const response = await client.fetch(
      `/api/v1/kbs/${encodeURIComponent(kbId)}/documents/${encodeURIComponent(documentId)}/file`,
      { headers: { accept: "*/*" } },
    );
    const url = URL.createObjectURL(await response.blob());
    const target = page ? `${url}#page=${page}` : url;
    if (tab) tab.location.href = target;
    else window.location.assign(target);
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
  } catch (err) {
    tab?.close();
    throw err;
  }
}

export function KnowledgeBaseDetail() {
  const { id = "" } = useParams();
  const client = useApi();
  const navigate = useNavigate();
  const base = `/api/v1/kbs/${encodeURIComponent(id)}`;
  const kb = useResource((signal) => client.get<KnowledgeBase>(base, signal), [client, base]);
  const docs = useResource(
    (signal) => client.get<ListOf<KbDocument>>(`${base}/documents`, signal),
    [client, base],
    documentsPoll,
  );
  const [progress, setProgress] = useState<{ label: string; fraction: number } | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [note, setNote] = useState<string | null>(null);
  const [busyDoc, setBusyDoc] = useState<string | null>(null);

  const upload = async (files: File[]) => {
    setError(null);
    setNote(null);
    const label = files.length === 1 ? files[0].name : `${files.length} files`;
    setProgress({ label, fraction: 0 });
    try {
      const result = await uploadWithProgress<UploadResult>(
        client,
        `${base}/documents`,
        () => {
          const form = new FormData();
          for (const file of files) form.append("files", file, file.name);
          return form;
        },
        { onProgress: (p) => setProgress({ label, fraction: p.fraction }) },
      );
      const refused = result.data.filter((f) => f.error);
      setNote(
        `${result.stored} document${result.stored === 1 ? "" : "s"} added; indexing has started.` +
          (refused.length ? ` Not added: ${refused.map((f) => `${f.name} (${f.error?.message})`).join("; ")}` : ""),
      );
      docs.reload();
    } catch (err) {
      if (!isAbort(err)) setError(errorMessage(err));
    } finally {
      setProgress(null);
    }
  };

  const removeDoc = async (doc: KbDocument) => {
    if (!window.confirm(`Delete "${doc.name}"? Answers will no longer cite it.`)) return;
    setError(null);
    setBusyDoc(doc.id);
    try {
      await client.delete(`${base}/documents/${encodeURIComponent(doc.id)}`);
      docs.reload();
    } catch (err) {
      setError(errorMessage(err));
    } finally {
      setBusyDoc(null);
    }
  };

  const open = async (doc: KbDocument) => {
    setError(null);
    try {
      await openDocument(client, id, doc.id);
    } catch (err) {
      setError(errorMessage(err));
    }
  };

  const removeKb = async () => {
    if (!kb.data || !window.confirm(`Delete "${kb.data.name}" and its index?`)) return;
    setError(null);
    try {
      await client.delete(base);
      navigate("/knowledge-bases");
    } catch (err) {
      setError(errorMessage(err));
    }
  };

  const documents = (docs.data?.data ?? []).filter((d) => d.state !== "deleted");
  const pending = documents.filter((d) => d.state === "pending").length;
  const external = kb.data?.external ?? false;
  return (
    <>
      <p>
        <Link to="/knowledge-bases">← All knowledge bases</Link>
      </p>
      <ErrorMessage message={kb.error} onRetry={kb.reload} />
      {kb.loading && !kb.data && <Spinner label="Loading the knowledge base…" />}
      {kb.data && (
        <>
          <PageHeader
            title={kb.data.name}
            intro={external ? "Reads your own bucket: add and delete documents there, they show up here by themselves." : "Add documents; each is read, split into passages and indexed for search."}
            actions={
              <>
                <Link className="button button-primary" to={`/chat?kb=${encodeURIComponent(kb.data.id)}`}>
                  Ask it in Chat
                </Link>
                <button type="button" className="button button-danger" onClick={removeKb}>
                  Delete
                </button>
              </>
            }
          />
          {!external && (
            <section className="card" aria-labelledby="docs-upload-title">
              <h2 id="docs-upload-title">Add documents</h2>
              <DropZone
                label="Choose files"
                multiple
                accept={DOCUMENT_TYPES}
                disabled={!!progress}
                onFiles={upload}
                hint="PDF, Word, Markdown, text or HTML; a .zip is unpacked into its documents."
              />
              {progress && (
                <div aria-live="polite">
                  <ProgressBar value={progress.fraction} label={progress.fraction < 1 ? `Uploading ${progress.label}` : `Storing ${progress.label}…`} />
                </div>
              )}
              {note && <Notice tone="success">{note}</Notice>}
            </section>
          )}
          <ErrorMessage message={error} />
          <section className="card" aria-labelledby="docs-title">
            <div className="deployment-head">
              <h2 id="docs-title">Documents</h2>
              {pending > 0 && <Spinner label={`Indexing ${pending} document${pending === 1 ? "" : "s"}…`} />}
            </div>
            <ErrorMessage message={docs.error} onRetry={docs.reload} />
            {docs.loading && !docs.data && <Spinner label="Loading documents…" />}
            {docs.data && documents.length === 0 && <p className="muted">No documents yet.</p>}
            {documents.length > 0 && (
              <div className="table-wrap">
                <table>
                  <caption className="visually-hidden">Documents</caption>
                  <thead>
                    <tr>
                      <th scope="col">Document</th>
                      <th scope="col">State</th>
                      <th scope="col">Size</th>
                      <th scope="col">Passages</th>
                      <th scope="col">
                        <span className="visually-hidden">Actions</span>
                      </th>
                    </tr>
                  </thead>
                  <tbody>
                    {documents.map((d) => (
                      <tr key={d.id} data-document={d.name}>
                        <td data-label="Document">{d.name}</td>
                        <td data-label="State">
                          <StatusBadge state={d.state} />
                          {d.failure && <p className="hint error-text">{d.failure.reason || d.failure.code}</p>}
                        </td>
                        <td data-label="Size">
                          {formatBytes(d.size)}
                          {d.pages ? ` · ${d.pages} page${d.pages === 1 ? "" : "s"}` : ""}
                        </td>
                        <td data-label="Passages">{d.state === "indexed" ? d.chunks.toLocaleString() : "—"}</td>
                        <td data-label="Actions" className="cell-actions">
                          {!external && (
                            <>
                              <button type="button" className="button button-small" onClick={() => open(d)} aria-label={`Open ${d.name}`}>
                                Open
                              </button>
                              <button
                                type="button"
                                className="button button-small button-danger"
                                onClick={() => removeDoc(d)}
                                disabled={busyDoc === d.id}
                                aria-label={`Delete ${d.name}`}
                              >
                                {busyDoc === d.id ? "Deleting…" : "Delete"}
                              </button>
                            </>
                          )}
                        </td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              </div>
            )}
          </section>
        </>
      )}
    </>
  );
}
