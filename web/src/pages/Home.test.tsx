import { screen } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { ApiClient } from "../api/client";
import { SESSION, json, memoryStore, mockFetch, renderWithClient } from "../test/helpers";
import { Home, nextStep, type Counts } from "./Home";

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
});
