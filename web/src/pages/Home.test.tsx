import { screen } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { ApiClient } from "../api/client";
import { SESSION, json, memoryStore, mockFetch, renderWithClient } from "../test/helpers";
import { Home, documentsStep, nextStep, type Counts } from "./Home";

const none: Counts = {
  datasets: 0,
  jobs: 0,
  runningJobs: 0,
  models: 0,
  deployments: 0,
  readyDeployments: 0,
  knowledgeBases: 0,
};

describe("nextStep", () => {
  it("follows the path data → fine-tune → deploy → chat", () => {
    expect(nextStep(none).to).toBe("/datasets");
    expect(nextStep({ ...none, datasets: 1 }).to).toBe("/fine-tune");
    expect(nextStep({ ...none, datasets: 1, jobs: 1, runningJobs: 1 }).to).toBe("/jobs");
    expect(nextStep({ ...none, models: 1 }).to).toBe("/deployments");
    expect(nextStep({ ...none, deployments: 1 }).title).toMatch(/on its way/);
    expect(nextStep({ ...none, deployments: 1, readyDeployments: 1 }).to).toBe("/chat");
  });
});

describe("documentsStep", () => {
  it("leads from documents to a cited answer, without training", () => {
    expect(documentsStep(none)?.action).toBe("Add your documents");
    expect(documentsStep({ ...none, knowledgeBases: 1, askableKb: null })?.title).toMatch(/being read/);
    expect(documentsStep({ ...none, knowledgeBases: 1, askableKb: "kb1" })?.to).toBe("/deployments");
    const ask = documentsStep({ ...none, knowledgeBases: 1, askableKb: "kb 1", readyDeployments: 1 });
    expect(ask?.to).toBe("/chat?kb=kb%201");
    expect(documentsStep({ ...none, knowledgeBases: null })).toBeNull();
  });
});

describe("Home", () => {
  it("counts what you have and says what to do next", async () => {
    const fetch = mockFetch({
      "GET /api/v1/datasets": json({ data: [{ id: "1" }, { id: "2" }], count: 2 }),
      "GET /api/v1/jobs": json({ data: [], count: 0 }),
      "GET /api/v1/models": json({ data: [], count: 0 }),
      "GET /api/v1/deployments": json({ data: [], count: 0 }),
      "GET /api/v1/kbs": json({ data: [], count: 0 }),
    });
    renderWithClient(<Home />, new ApiClient(memoryStore(SESSION), fetch));
    expect(await screen.findByRole("link", { name: "Start a fine-tune" })).toHaveAttribute("href", "/fine-tune");
    expect(screen.getByRole("link", { name: /2\s*Datasets/ })).toBeInTheDocument();
  });

  it("offers to ask a knowledge base once it has an indexed document and a model is ready", async () => {
    const fetch = mockFetch({
      "GET /api/v1/datasets": json({ data: [], count: 0 }),
      "GET /api/v1/jobs": json({ data: [], count: 0 }),
      "GET /api/v1/models": json({ data: [], count: 0 }),
      "GET /api/v1/deployments": json({ data: [{ id: "d1", state: "ready" }], count: 1 }),
      "GET /api/v1/kbs": json({ data: [{ id: "empty" }, { id: "filings" }], count: 2 }),
      "GET /api/v1/kbs/empty/documents": json({ data: [{ id: "a", state: "pending" }], count: 1 }),
      "GET /api/v1/kbs/filings/documents": json({ data: [{ id: "b", state: "indexed" }], count: 1 }),
    });
    renderWithClient(<Home />, new ApiClient(memoryStore(SESSION), fetch));
    const ask = await screen.findByRole("link", { name: "Ask your documents" });
    expect(ask).toHaveAttribute("href", "/chat?kb=filings");
  });
});
