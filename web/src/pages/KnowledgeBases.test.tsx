import { screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { Route, Routes } from "react-router-dom";
import { describe, expect, it, vi } from "vitest";
import { ApiClient } from "../api/client";
import type { KbDocument } from "../api/types";
import { SESSION, apiError, fakeXhr, json, memoryStore, mockFetch, renderWithClient } from "../test/helpers";
import { documentsPoll, KnowledgeBaseDetail, KnowledgeBases } from "./KnowledgeBases";

const kb = { id: "kb1", name: "Filings", external: false, created_at: null };
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
