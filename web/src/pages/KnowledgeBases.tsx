// Knowledge bases: create one, upload and delete documents, and watch each document's
// indexing state live (the list refreshes while the page is open, so documents put straight
// into the bucket appear by themselves). A knowledge base may instead read the user's own
// S3-compatible bucket: Forgeline only reads it, so its page shows where to put files
// rather than upload and delete controls.

import { useId, useState, type FormEvent } from "react";
import { Link, useNavigate, useParams } from "react-router-dom";
import { ApiError, errorMessage, isAbort, type ApiClient } from "../api/client";
import type {
  ExternalBucketCreate,
  KbDocument,
  KnowledgeBase,
  KnowledgeBaseCreate,
  ListOf,
  ReconcileResult,
  UploadResult,
} from "../api/types";
import { formatBytes, uploadWithProgress } from "../api/upload";
import { useApi } from "../auth/AuthContext";
import { DropZone, ProgressBar } from "../components/DropZone";
import { CopyButton, EmptyState, ErrorMessage, formatDate, Notice, PageHeader, Spinner, StatusBadge } from "../components/ui";
import { useResource } from "../lib/useResource";

const DOCUMENT_TYPES = ".pdf,.txt,.md,.markdown,.docx,.html,.htm,.csv,.json,.zip";

/** Fast while something is being indexed, and still every 5 s to catch bucket changes. */
export const documentsPoll = (list: ListOf<KbDocument> | undefined) =>
  list?.data.some((d) => d.state === "pending") ? 1500 : 5000;

type Where = "platform" | "bucket";

/** What the user typed for their own bucket (all strings: the form's fields). */
export interface BucketFields {
  bucket: string;
  prefix: string;
  endpointUrl: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
}

const NO_BUCKET: BucketFields = { bucket: "", prefix: "", endpointUrl: "", region: "", accessKeyId: "", secretAccessKey: "" };

/** The create request. Empty optional fields are left out rather than sent as "": the API
 * reads a missing endpoint as AWS S3 itself and a missing region as the endpoint's default. */
export function createRequest(name: string, where: Where, fields: BucketFields): KnowledgeBaseCreate {
  if (where === "platform") return { name: name.trim() };
  const bucket: ExternalBucketCreate = {
    bucket: fields.bucket.trim(),
    access_key_id: fields.accessKeyId.trim(),
    secret_access_key: fields.secretAccessKey.trim(),
  };
  const prefix = fields.prefix.trim();
  const endpoint = fields.endpointUrl.trim();
  const region = fields.region.trim();
  if (prefix) bucket.prefix = prefix;
  if (endpoint) bucket.endpoint_url = endpoint;
  if (region) bucket.region = region;
  return { name: name.trim(), external_bucket: bucket };
}

// The API's own refusals (bucket_not_found, bucket_access_denied, endpoint_not_allowed, ...)
// are already sentences. Only its schema check (`invalid_request`) answers in the form
// "external_bucket.bucket: String should match pattern ...", which is for developers: say
// it per field instead.
const FIELD_PROBLEMS: Record<string, string> = {
  name: "Give the knowledge base a name of up to 100 characters.",
  "external_bucket.bucket":
    "That is not a valid bucket name: 3 to 63 lower-case letters, digits, dots or hyphens, starting and ending with a letter or digit.",
  "external_bucket.prefix": "The folder can be at most 512 characters long.",
  "external_bucket.endpoint_url": "The endpoint URL must start with http:// or https://. Leave it empty for AWS S3.",
  "external_bucket.region": "The region can be at most 64 characters long, e.g. eu-west-1.",
  "external_bucket.access_key_id": "Enter the access key ID (at most 128 characters).",
  "external_bucket.secret_access_key": "Enter the secret access key (at most 256 characters).",
};

export function createErrorMessage(err: unknown): string {
  if (err instanceof ApiError && err.code === "invalid_request") {
    const field = /^([\w.]+):/.exec(err.message)?.[1];
    if (field && FIELD_PROBLEMS[field]) return FIELD_PROBLEMS[field];
  }
  return errorMessage(err);
}

/** Where an attached knowledge base reads its documents, as people write it. */
export const bucketUrl = (kb: Pick<KnowledgeBase, "bucket" | "prefix">) => `s3://${kb.bucket}/${kb.prefix}`;

const WHERE_CHOICES: { value: Where; title: string; text: string }[] = [
  { value: "platform", title: "Here in Forgeline (upload them)", text: "Upload files on the knowledge base's page; Forgeline stores them." },
  {
    value: "bucket",
    title: "In my own bucket (S3 or compatible)",
    text: "Forgeline reads a bucket of yours (AWS S3, MinIO, R2, ...); add and delete files there.",
  },
];

/** Native radios sharing one name: arrow keys move between them, one tab stop. */
function WhereChoice({ value, onChange }: { value: Where; onChange: (value: Where) => void }) {
  const name = useId();
  return (
    <fieldset>
      <legend>Where do the documents live?</legend>
      <div className="choice-grid">
        {WHERE_CHOICES.map((c) => (
          <label key={c.value} className={value === c.value ? "choice active" : "choice"}>
            <input type="radio" name={name} value={c.value} checked={value === c.value} onChange={() => onChange(c.value)} />
            <span className="choice-title">{c.title}</span>
            <span className="choice-text hint">{c.text}</span>
          </label>
        ))}
      </div>
    </fieldset>
  );
}

function BucketFieldsEditor({ value, onChange }: { value: BucketFields; onChange: (value: BucketFields) => void }) {
  const id = useId();
  const set = (key: keyof BucketFields) => (event: { target: { value: string } }) => onChange({ ...value, [key]: event.target.value });
  const field = (key: keyof BucketFields) => `${id}-${key}`;
  return (
    <fieldset className="kb-bucket-fields">
      <legend>Your bucket</legend>
      <p className="hint">
        Forgeline only reads it: the key needs permission to list the bucket and read its files (s3:ListBucket and
        s3:GetObject), nothing more.
      </p>
      <div className="grid-2">
        <div className="field">
          <label htmlFor={field("bucket")}>Bucket name</label>
          <input
            id={field("bucket")}
            required
            minLength={3}
            maxLength={63}
            pattern="[a-z0-9][a-z0-9.\-]+[a-z0-9]"
            autoComplete="off"
            spellCheck={false}
            placeholder="e.g. acme-documents"
            value={value.bucket}
            onChange={set("bucket")}
          />
        </div>
        <div className="field">
          <label htmlFor={field("prefix")}>Folder (optional)</label>
          <input
            id={field("prefix")}
            maxLength={512}
            autoComplete="off"
            spellCheck={false}
            placeholder="e.g. manuals/"
            aria-describedby={`${field("prefix")}-hint`}
            value={value.prefix}
            onChange={set("prefix")}
          />
          <p className="hint" id={`${field("prefix")}-hint`}>
            Only files under this prefix are read; empty: the whole bucket.
          </p>
        </div>
        <div className="field">
          <label htmlFor={field("endpointUrl")}>Endpoint URL (optional)</label>
          <input
            id={field("endpointUrl")}
            type="url"
            maxLength={2048}
            pattern="https?://\S+"
            autoComplete="off"
            spellCheck={false}
            placeholder="https://minio.example.com"
            aria-describedby={`${field("endpointUrl")}-hint`}
            value={value.endpointUrl}
            onChange={set("endpointUrl")}
          />
          <p className="hint" id={`${field("endpointUrl")}-hint`}>
            Leave empty for AWS S3.
          </p>
        </div>
        <div className="field">
          <label htmlFor={field("region")}>Region (optional)</label>
          <input
            id={field("region")}
            maxLength={64}
            autoComplete="off"
            spellCheck={false}
            placeholder="e.g. eu-west-1"
            value={value.region}
            onChange={set("region")}
          />
        </div>
        <div className="field">
          <label htmlFor={field("accessKeyId")}>Access key ID</label>
          <input
            id={field("accessKeyId")}
            required
            maxLength={128}
            autoComplete="off"
            spellCheck={false}
            value={value.accessKeyId}
            onChange={set("accessKeyId")}
          />
        </div>
        <div className="field">
          <label htmlFor={field("secretAccessKey")}>Secret access key</label>
          {/* "new-password", not "off": browsers ignore "off" on password fields and would
              fill in the user's Forgeline password here. */}
          <input
            id={field("secretAccessKey")}
            type="password"
            required
            maxLength={256}
            autoComplete="new-password"
            spellCheck={false}
            aria-describedby={`${field("secretAccessKey")}-hint`}
            value={value.secretAccessKey}
            onChange={set("secretAccessKey")}
          />
          <p className="hint" id={`${field("secretAccessKey")}-hint`}>
            Stored encrypted and never shown again, not even to you.
          </p>
        </div>
      </div>
    </fieldset>
  );
}

function CreateKnowledgeBase() {
  const client = useApi();
  const navigate = useNavigate();
  const id = useId();
  const [name, setName] = useState("");
  const [where, setWhere] = useState<Where>("platform");
  const [bucket, setBucket] = useState<BucketFields>(NO_BUCKET);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const create = async (event: FormEvent) => {
    event.preventDefault();
    setError(null);
    setBusy(true);
    try {
      const kb = await client.post<KnowledgeBase>("/api/v1/kbs", createRequest(name, where, bucket));
      // Files already in an attached bucket would otherwise wait for the next polling pass
      // (about a minute): ask for a look now. Not awaited; the page polls the list anyway.
      if (kb.external) client.post(`/api/v1/kbs/${encodeURIComponent(kb.id)}/reconcile`).catch(() => undefined);
      navigate(`/knowledge-bases/${encodeURIComponent(kb.id)}`);
    } catch (err) {
      setError(createErrorMessage(err));
      setBusy(false);
    }
  };

  const chooseWhere = (value: Where) => {
    setWhere(value);
    setError(null);
  };

  return (
    <section className="card" aria-labelledby={`${id}-title`}>
      <h2 id={`${id}-title`}>New knowledge base</h2>
      <form className="form" onSubmit={create}>
        <div className="field kb-name">
          <label htmlFor={id}>Name</label>
          <input id={id} required maxLength={100} value={name} onChange={(e) => setName(e.target.value)} placeholder="e.g. Annual reports" />
        </div>
        <WhereChoice value={where} onChange={chooseWhere} />
        {where === "bucket" && <BucketFieldsEditor value={bucket} onChange={setBucket} />}
        <ErrorMessage message={error} />
        <div>
          <button type="submit" className="button button-primary" disabled={busy || !name.trim()}>
            {busy ? (where === "bucket" ? "Checking the bucket…" : "Creating…") : "Create"}
          </button>
        </div>
      </form>
    </section>
  );
}

export function KnowledgeBases() {
  const client = useApi();
  const kbs = useResource((signal) => client.get<ListOf<KnowledgeBase>>("/api/v1/kbs", signal), [client]);
  const list = kbs.data?.data ?? [];
  return (
    <>
      <PageHeader title="Knowledge bases" intro="Folders of your documents that the chat can answer from, citing its sources." />
      <CreateKnowledgeBase />
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
                  <td data-label="Documents live in">
                    {k.external ? (
                      <>
                        Your own bucket: <code className="kb-location">{bucketUrl(k)}</code>
                      </>
                    ) : (
                      "Forgeline"
                    )}
                  </td>
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

/** What one "check now" pass did, in words. */
export function checkedNote(result: ReconcileResult): string {
  const parts: string[] = [];
  const files = (n: number) => `${n} file${n === 1 ? "" : "s"}`;
  if (result.queued_for_indexing) parts.push(`${files(result.queued_for_indexing)} new or changed, now being indexed`);
  if (result.removed) parts.push(`${files(result.removed)} gone from the bucket, removed`);
  return parts.length ? `Checked the bucket: ${parts.join("; ")}.` : "Checked the bucket: everything is up to date.";
}

/** Shown instead of the upload card when the documents live in the user's own bucket:
 * Forgeline cannot write there, so the page says where to put files instead. */
function BucketSource({ kb, onChecked }: { kb: KnowledgeBase; onChecked: () => void }) {
  const client = useApi();
  const id = useId();
  const [busy, setBusy] = useState(false);
  const [note, setNote] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const location = bucketUrl(kb);

  // The bucket is polled about once a minute anyway; this is for the impatient, and it says
  // at once when the bucket can no longer be read (changed key, deleted bucket, ...).
  const check = async () => {
    setBusy(true);
    setNote(null);
    setError(null);
    try {
      const result = await client.post<ReconcileResult>(`/api/v1/kbs/${encodeURIComponent(kb.id)}/reconcile`);
      setNote(checkedNote(result));
      onChecked();
    } catch (err) {
      setError(errorMessage(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <section className="card" aria-labelledby={`${id}-title`}>
      <h2 id={`${id}-title`}>Where the documents live</h2>
      <div className="kb-source">
        <p data-testid="kb-location">
          Reads <code className="kb-location">{location}</code>
        </p>
        <CopyButton text={location} label="Copy the location" />
      </div>
      <p className="hint kb-source-hint">
        Put files (PDF, Word, Markdown, text, HTML) under this folder of your bucket with your usual tools; new files show up
        here within about a minute, changed ones are indexed again and deleted ones disappear. Forgeline only reads the
        bucket, it never writes to it.
      </p>
      <button type="button" className="button" onClick={check} disabled={busy}>
        {busy ? "Checking…" : "Check the bucket now"}
      </button>
      {note && <Notice tone="success">{note}</Notice>}
      <ErrorMessage message={error} />
    </section>
  );
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
    if (!kb.data) return;
    const question = kb.data.external
      ? `Delete "${kb.data.name}" and its index? The files in your bucket stay where they are.`
      : `Delete "${kb.data.name}", its documents and its index?`;
    if (!window.confirm(question)) return;
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
            intro={
              external
                ? "Reads your own bucket: add and delete documents there, they show up here by themselves."
                : "Add documents; each is read, split into passages and indexed for search."
            }
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
          {external && <BucketSource kb={kb.data} onChecked={docs.reload} />}
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
            {docs.data && documents.length === 0 && (
              <p className="muted">{external && kb.data ? `No documents in ${bucketUrl(kb.data)} yet.` : "No documents yet."}</p>
            )}
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
                      {/* Documents in the user's own bucket are opened and deleted there. */}
                      {!external && (
                        <th scope="col">
                          <span className="visually-hidden">Actions</span>
                        </th>
                      )}
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
                        {!external && (
                          <td data-label="Actions" className="cell-actions">
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
                          </td>
                        )}
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
