import { screen, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { ApiClient } from "../api/client";
import { SESSION, json, memoryStore, mockFetch, renderWithClient } from "../test/helpers";
import { dataset } from "../test/fixtures";
import { Models } from "./Models";

describe("Models", () => {
  it("shows each version's lineage and metrics, with a Deploy button", async () => {
    const fetch = mockFetch({
      "GET /api/v1/models": json({
        data: [
          {
            id: "mv1",
            name: "tutor-v1",
            job_id: "job1",
            base_model: "smollm2-135m-instruct",
            dataset_id: "ds1",
            hub_dataset: null,
            method: "lora",
            metrics: { final_loss: 1.2346, held_out_loss: 1.5, base_score: 0.1, tuned_score: 0.25, steps: 4 },
            has_adapter: true,
            created_at: null,
          },
        ],
        count: 1,
      }),
      "GET /api/v1/datasets": json({ data: [dataset()], count: 1 }),
    });
    renderWithClient(<Models />, new ApiClient(memoryStore(SESSION), fetch));
    const card = await screen.findByRole("article", { name: "tutor-v1" });
    const lineage = within(card).getByLabelText("Where it came from");
    expect(lineage).toHaveTextContent("smollm2-135m-instruct");
    expect(within(lineage).getByRole("link", { name: "support.jsonl" })).toHaveAttribute("href", "/datasets/ds1");
    expect(within(lineage).getByRole("link", { name: "see the training run" })).toHaveAttribute("href", "/jobs/job1");
    const metrics = within(card).getByLabelText("Metrics");
    expect(metrics).toHaveTextContent("Final loss1.235");
    expect(metrics).toHaveTextContent("Tuned model score25%");
    expect(within(card).getByRole("link", { name: "Deploy" })).toHaveAttribute("href", "/deployments?version=mv1");
  });

  it("says where models come from when there are none", async () => {
    const fetch = mockFetch({ "GET /api/v1/models": json({ data: [], count: 0 }), "GET /api/v1/datasets": json({ data: [], count: 0 }) });
    renderWithClient(<Models />, new ApiClient(memoryStore(SESSION), fetch));
    expect(await screen.findByText("No models yet")).toBeInTheDocument();
  });
});
