import { screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { Route, Routes } from "react-router-dom";
import { describe, expect, it, vi } from "vitest";
import { ApiClient } from "../api/client";
import type { KbDocument } from "../api/types";
import { SESSION, apiError, fakeXhr, json, memoryStore, mockFetch, renderWithClient } from "../test/helpers";
import { checkedNote, documentsPoll, KnowledgeBaseDetail, KnowledgeBases } from "./KnowledgeBases";

const kb = { id: "kb1", name: "Filings", bucket: "forgeline", prefix: "u1/kbs/kb1/", external: false, created_at: null };
const attached = { id: "kb2", name: "Manuals", bucket: "acme-docs", prefix: "manuals/", external: true, created_at: null };
const SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const doc = (over: Partial<KbDocument> = {}): KbDocument => ({
  id: "doc1",
  kb_id: "kb1",
  name: "AMCOR_2022_8K.pdf",
  key: "u1/kbs/kb1/AMCOR_2022_8K.pdf",
  etag: "e",
  state: "pending",
  failure: null,
  chunks: 0,
  pages: 0,
  size: 151_000,
  updated_at: null,
  ...over,
});

const pages = (
  <Routes>
    <Route path="/knowledge-bases" element={<KnowledgeBases />} />
    <Route path="/knowledge-bases/:id" element={<KnowledgeBaseDetail />} />
  </Routes>
);

describe("KnowledgeBases", () => {
  it("creates a knowledge base and opens it", async () => {
    const fetch = mockFetch({
      "GET /api/v1/kbs": json({ data: [], count: 0 }),
      "POST /api/v1/kbs": ({ body }) => {
        expect(body).toEqual({ name: "Filings" });
        return json(kb, 201);
      },
      "GET /api/v1/kbs/kb1": json(kb),
      "GET /api/v1/kbs/kb1/documents": json({ data: [], count: 0 }),
    });
    renderWithClient(pages, new ApiClient(memoryStore(SESSION), fetch), "/knowledge-bases");
    await userEvent.type(await screen.findByLabelText("Name"), "Filings");
    await userEvent.click(screen.getByRole("button", { name: "Create" }));
    expect(await screen.findByRole("heading", { name: "Filings" })).toBeInTheDocument();
    expect(screen.getByText("No documents yet.")).toBeInTheDocument();
  });

  it("shows a refusal in words", async () => {
    const fetch = mockFetch({
      "GET /api/v1/kbs": json({ data: [], count: 0 }),
      "POST /api/v1/kbs": apiError(409, "kb_name_taken", "You already have a knowledge base called Filings."),
    });
    renderWithClient(pages, new ApiClient(memoryStore(SESSION), fetch), "/knowledge-bases");
    await userEvent.type(await screen.findByLabelText("Name"), "Filings");
    await userEvent.click(screen.getByRole("button", { name: "Create" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("You already have a knowledge base called Filings.");
  });

  it("uploads documents and follows their state until indexed", async () => {
    let documents: KbDocument[] = [];
    const requests = fakeXhr(() => {
      documents = [doc()];
      return json({ data: [{ name: "AMCOR_2022_8K.pdf", source: "AMCOR_2022_8K.pdf", key: "k", document_id: "doc1", state: "pending", error: null }], count: 1, stored: 1, failed: 0 }, 201);
    });
    const fetch = mockFetch({
      "GET /api/v1/kbs/kb1": json(kb),
      "GET /api/v1/kbs/kb1/documents": () => {
        const reply = json({ data: documents, count: documents.length });
        // Indexed by the next look; and a document put straight into the bucket shows up.
        if (documents[0]?.state === "pending") documents = [doc({ state: "indexed", chunks: 12, pages: 3 }), doc({ id: "doc2", name: "from-bucket.md", key: "k2", state: "pending" })];
        return reply;
      },
    });
    renderWithClient(pages, new ApiClient(memoryStore(SESSION), fetch), "/knowledge-bases/kb1");
    await userEvent.upload(await screen.findByLabelText("Choose files"), new File(["%PDF"], "AMCOR_2022_8K.pdf", { type: "application/pdf" }));
    expect(await screen.findByText(/1 document added; indexing has started/)).toBeInTheDocument();
    expect(requests[0].url).toBe("/api/v1/kbs/kb1/documents");
    expect((requests[0].body.getAll("files")[0] as File).name).toBe("AMCOR_2022_8K.pdf");
    const row = await screen.findByRole("row", { name: /AMCOR_2022_8K.pdf/ });
    await vi.waitFor(() => expect(within(row).getByText("indexed")).toBeInTheDocument(), { timeout: 4000 });
    expect(row).toHaveTextContent("12");
    expect(await screen.findByRole("row", { name: /from-bucket.md/ })).toBeInTheDocument();
  });

  it("deletes a document after asking", async () => {
    let documents = [doc({ state: "indexed" })];
    const fetch = mockFetch({
      "GET /api/v1/kbs/kb1": json(kb),
      "GET /api/v1/kbs/kb1/documents": () => json({ data: documents, count: documents.length }),
      "DELETE /api/v1/kbs/kb1/documents/doc1": () => {
        documents = [];
        return json(null, 204);
      },
    });
    vi.spyOn(window, "confirm").mockReturnValue(true);
    renderWithClient(pages, new ApiClient(memoryStore(SESSION), fetch), "/knowledge-bases/kb1");
    await userEvent.click(await screen.findByRole("button", { name: "Delete AMCOR_2022_8K.pdf" }));
    expect(await screen.findByText("No documents yet.")).toBeInTheDocument();
  });


  it("polls fast while indexing and keeps polling for bucket changes", () => {
    expect(documentsPoll({ data: [doc()], count: 1 })).toBe(1500);
    expect(documentsPoll({ data: [doc({ state: "indexed" })], count: 1 })).toBe(5000);
  });
});

describe("A knowledge base in the user's own bucket", () => {
  /** Name it, choose "my own bucket" with the keyboard, and fill in the bucket's fields. */
  async function fillOwnBucketForm(endpoint = "https://minio.example.com") {
    await userEvent.type(await screen.findByLabelText("Name"), "Manuals");
    const here = screen.getByRole("radio", { name: /Here in Forgeline/ });
    expect(here).toBeChecked();
    expect(screen.queryByLabelText("Bucket name")).not.toBeInTheDocument();
    // One tab stop for the group; an arrow key moves the choice, as with any radio group.
    here.focus();
    await userEvent.keyboard("{ArrowDown}");
    expect(screen.getByRole("radio", { name: /In my own bucket/ })).toBeChecked();
    expect(screen.getByRole("group", { name: "Where do the documents live?" })).toBeInTheDocument();
    await userEvent.type(screen.getByLabelText("Bucket name"), "acme-docs");
    await userEvent.type(screen.getByLabelText("Folder (optional)"), "manuals/");
    if (endpoint) await userEvent.type(screen.getByLabelText("Endpoint URL (optional)"), endpoint);
    await userEvent.type(screen.getByLabelText("Access key ID"), "AKIAEXAMPLE");
    await userEvent.type(screen.getByLabelText("Secret access key"), SECRET);
  }

  it("sends the bucket once, with its secret in that one request only", async () => {
    const fetch = mockFetch({
      "GET /api/v1/kbs": json({ data: [], count: 0 }),
      "POST /api/v1/kbs": ({ body }) => {
        // The region was left empty: left out, not sent as "".
        expect(body).toEqual({
          name: "Manuals",
          external_bucket: {
            bucket: "acme-docs",
            prefix: "manuals/",
            endpoint_url: "https://minio.example.com",
            access_key_id: "AKIAEXAMPLE",
            secret_access_key: SECRET,
          },
        });
        return json(attached, 201);
      },
      "POST /api/v1/kbs/kb2/reconcile": json({ queued_for_indexing: 0, removed: 0, unchanged: 0 }),
      "GET /api/v1/kbs/kb2": json(attached),
      "GET /api/v1/kbs/kb2/documents": json({ data: [], count: 0 }),
    });
    renderWithClient(pages, new ApiClient(memoryStore(SESSION), fetch), "/knowledge-bases");
    await fillOwnBucketForm();
    const secret = screen.getByLabelText("Secret access key");
    expect(secret).toHaveAttribute("type", "password");
    expect(secret).toHaveAttribute("autocomplete", "new-password");
    expect(secret).toHaveAccessibleDescription(/never shown again/);
    expect(screen.getByLabelText("Endpoint URL (optional)")).toHaveAccessibleDescription("Leave empty for AWS S3.");
    await userEvent.click(screen.getByRole("button", { name: "Create" }));

    expect(await screen.findByRole("heading", { name: "Manuals" })).toBeInTheDocument();
    const calls = fetch.mock.calls.map(([input, init]) => ({ url: String(input), method: init?.method ?? "GET", body: String(init?.body ?? "") }));
    expect(calls.filter((c) => c.body.includes(SECRET)).map((c) => `${c.method} ${c.url}`)).toEqual(["POST /api/v1/kbs"]);
    expect(calls.some((c) => c.url.includes(SECRET))).toBe(false);
    // Files already in the bucket are looked for at once, not at the next polling pass.
    expect(calls.some((c) => c.method === "POST" && c.url === "/api/v1/kbs/kb2/reconcile")).toBe(true);
    expect(document.body.innerHTML).not.toContain(SECRET);
    expect(JSON.stringify({ ...localStorage })).not.toContain(SECRET);
    expect(JSON.stringify({ ...sessionStorage })).not.toContain(SECRET);
  });

  it("shows the API's refusal as a sentence by the form, and keeps what was typed", async () => {
    const fetch = mockFetch({
      "GET /api/v1/kbs": json({ data: [], count: 0 }),
      "POST /api/v1/kbs": apiError(
        422,
        "bucket_access_denied",
        "Those credentials cannot list the bucket; they need s3:ListBucket and s3:GetObject on it.",
      ),
    });
    renderWithClient(pages, new ApiClient(memoryStore(SESSION), fetch), "/knowledge-bases");
    await fillOwnBucketForm("");
    await userEvent.click(screen.getByRole("button", { name: "Create" }));
    const form = screen.getByRole("button", { name: "Create" }).closest("form") as HTMLFormElement;
    expect(await within(form).findByRole("alert")).toHaveTextContent(
      "Those credentials cannot list the bucket; they need s3:ListBucket and s3:GetObject on it.",
    );
    expect(screen.getByLabelText("Bucket name")).toHaveValue("acme-docs");
    expect(screen.getByLabelText("Secret access key")).toHaveValue(SECRET);
  });

  it("says a schema refusal in words, not as the field path", async () => {
    const fetch = mockFetch({
      "GET /api/v1/kbs": json({ data: [], count: 0 }),
      "POST /api/v1/kbs": apiError(422, "invalid_request", "external_bucket.bucket: String should match pattern '^[a-z0-9][a-z0-9.-]+[a-z0-9]$'"),
    });
    renderWithClient(pages, new ApiClient(memoryStore(SESSION), fetch), "/knowledge-bases");
    await fillOwnBucketForm();
    await userEvent.click(screen.getByRole("button", { name: "Create" }));
    const alert = await screen.findByRole("alert");
    expect(alert).toHaveTextContent(/^That is not a valid bucket name: 3 to 63 lower-case letters/);
    expect(alert).not.toHaveTextContent("external_bucket");
  });

  it("lists where an attached knowledge base reads", async () => {
    const fetch = mockFetch({ "GET /api/v1/kbs": json({ data: [kb, attached], count: 2 }) });
    renderWithClient(pages, new ApiClient(memoryStore(SESSION), fetch), "/knowledge-bases");
    expect(await screen.findByRole("row", { name: /Manuals/ })).toHaveTextContent("Your own bucket: s3://acme-docs/manuals/");
    expect(screen.getByRole("row", { name: /Filings/ })).toHaveTextContent("Forgeline");
  });

  it("shows the bucket it reads, with no upload or delete controls, and checks it on demand", async () => {
    let documents = [doc({ id: "d1", kb_id: "kb2", name: "pump.pdf", key: "manuals/pump.pdf", state: "indexed", chunks: 4 })];
    const fetch = mockFetch({
      "GET /api/v1/kbs/kb2": json(attached),
      "GET /api/v1/kbs/kb2/documents": () => json({ data: documents, count: documents.length }),
      "POST /api/v1/kbs/kb2/reconcile": () => {
        documents = [...documents, doc({ id: "d2", kb_id: "kb2", name: "valve.txt", key: "manuals/valve.txt" })];
        return json({ queued_for_indexing: 1, removed: 0, unchanged: 1 });
      },
    });
    renderWithClient(pages, new ApiClient(memoryStore(SESSION), fetch), "/knowledge-bases/kb2");
    expect(await screen.findByTestId("kb-location")).toHaveTextContent("Reads s3://acme-docs/manuals/");
    expect(screen.getByText(/new files show up here within about a minute/)).toBeInTheDocument();
    const row = await screen.findByRole("row", { name: /pump.pdf/ });
    expect(within(row).getByText("indexed")).toBeInTheDocument();
    expect(screen.queryByLabelText("Choose files")).not.toBeInTheDocument();
    expect(within(row).queryByRole("button")).not.toBeInTheDocument();
    // The knowledge base itself can still be deleted (the files stay in the bucket).
    expect(screen.getByRole("button", { name: "Delete" })).toBeInTheDocument();

    await userEvent.click(screen.getByRole("button", { name: "Check the bucket now" }));
    expect(await screen.findByText("Checked the bucket: 1 file new or changed, now being indexed.")).toBeInTheDocument();
    expect(await screen.findByRole("row", { name: /valve.txt/ })).toBeInTheDocument();
  });

  it("says why the bucket cannot be checked", async () => {
    const fetch = mockFetch({
      "GET /api/v1/kbs/kb2": json(attached),
      "GET /api/v1/kbs/kb2/documents": json({ data: [], count: 0 }),
      "POST /api/v1/kbs/kb2/reconcile": apiError(422, "bucket_access_denied", "Forgeline can no longer read this bucket."),
    });
    renderWithClient(pages, new ApiClient(memoryStore(SESSION), fetch), "/knowledge-bases/kb2");
    expect(await screen.findByText("No documents in s3://acme-docs/manuals/ yet.")).toBeInTheDocument();
    await userEvent.click(screen.getByRole("button", { name: "Check the bucket now" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("Forgeline can no longer read this bucket.");
  });

  it("describes a check in words", () => {
    expect(checkedNote({ queued_for_indexing: 0, removed: 0, unchanged: 3 })).toBe("Checked the bucket: everything is up to date.");
    expect(checkedNote({ queued_for_indexing: 2, removed: 1, unchanged: 0 })).toBe(
      "Checked the bucket: 2 files new or changed, now being indexed; 1 file gone from the bucket, removed.",
    );
  });
});
