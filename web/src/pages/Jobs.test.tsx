import { screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { Route, Routes } from "react-router-dom";
import { describe, expect, it, vi } from "vitest";
import { ApiClient } from "../api/client";
import type { Job } from "../api/types";
import { SESSION, json, memoryStore, mockFetch, renderWithClient, sseResponse } from "../test/helpers";
import { INITIAL_LIVE, JobDetail, Jobs, liveReducer } from "./Jobs";

const job = (over: Partial<Job> = {}): Job => ({
  id: "job1",
  name: "Tutor v1",
  base_model: "smollm2-135m-instruct",
  dataset_id: "ds1",
  stage: "sft",
  method: "lora",
  provider: "local",
  preset: "quick",
  state: "training",
  failure_reason: null,
  cancel_requested: false,
  step: 0,
  max_steps: 4,
  last_loss: null,
  last_eval_loss: null,
  evaluation: null,
  model_version_id: null,
  created_at: null,
  ...over,
});

const page = (
  <Routes>
    <Route path="/jobs" element={<Jobs />} />
    <Route path="/jobs/:id" element={<JobDetail />} />
  </Routes>
);

describe("Jobs", () => {
  it("lists jobs with their progress, linking to each", async () => {
    const fetch = mockFetch({ "GET /api/v1/jobs": json({ data: [job({ step: 2 })], count: 1 }) });
    renderWithClient(page, new ApiClient(memoryStore(SESSION), fetch), "/jobs");
    expect(await screen.findByRole("link", { name: "Tutor v1" })).toHaveAttribute("href", "/jobs/job1");
    expect(screen.getByText("2 / 4 steps")).toBeInTheDocument();
  });

  it("draws the loss as events arrive, with speed, logs and the current stage", async () => {
    const fetch = mockFetch({
      "GET /api/v1/jobs/job1": json(job()),
      "GET /api/v1/jobs/job1/events": () =>
        sseResponse([
          { id: "1-0", event: "state", data: { state: "validating" } },
          { id: "2-0", event: "state", data: { state: "training" } },
          { id: "3-0", event: "log", data: { line: "Loading the model" } },
          { id: "4-0", event: "progress", data: { step: 1, max_steps: 4, loss: 2.5, tokens_per_second: 812.4 } },
          { id: "5-0", event: "progress", data: { step: 2, max_steps: 4, loss: 2.1, tokens_per_second: 830 } },
          { id: "6-0", event: "eval", data: { step: 2, eval_loss: 2.3 } },
        ]),
    });
    renderWithClient(page, new ApiClient(memoryStore(SESSION), fetch), "/jobs/job1");
    const chart = await screen.findByRole("img", { name: /Training loss 2.10 at step 2 \(2 points\)/ });
    expect(chart).toHaveAccessibleName(/Held-out loss 2.30 at step 2 \(1 points\)/);
    expect(chart.querySelectorAll('[data-series="Training loss"] circle')).toHaveLength(2);
    expect(screen.getByText("830 tokens/s")).toBeInTheDocument();
    expect(screen.getByText("2 / 4")).toBeInTheDocument();
    expect(screen.getByLabelText("Job log")).toHaveTextContent("Loading the model");
    const current = within(screen.getByRole("list", { name: "Stages" })).getByText("Training").closest("li");
    expect(current).toHaveAttribute("aria-current", "step");
    // The stream closed without an end: it reconnects from the last event it saw.
    await vi.waitFor(() => expect(fetch.mock.calls.filter(([u]) => String(u).endsWith("/events")).length).toBeGreaterThan(1), {
      timeout: 3000,
    });
    const retry = fetch.mock.calls.filter(([u]) => String(u).endsWith("/events"))[1];
    expect((retry[1]?.headers as Record<string, string>)["Last-Event-ID"]).toBe("6-0");
  });

  it("cancels after asking", async () => {
    let state = "training";
    const fetch = mockFetch({
      "GET /api/v1/jobs/job1": () => json(job({ state })),
      "GET /api/v1/jobs/job1/events": () => sseResponse([{ event: "state", data: { state: "training" } }]),
      "POST /api/v1/jobs/job1/cancel": () => {
        state = "cancelled";
        return json(job({ state }));
      },
    });
    const confirm = vi.spyOn(window, "confirm").mockReturnValue(true);
    renderWithClient(page, new ApiClient(memoryStore(SESSION), fetch), "/jobs/job1");
    await userEvent.click(await screen.findByRole("button", { name: "Cancel" }));
    expect(confirm).toHaveBeenCalled();
    expect(fetch.mock.calls.some(([u, init]) => String(u).endsWith("/cancel") && init?.method === "POST")).toBe(true);
  });

  it("reports base vs tuned when done, and offers to deploy", async () => {
    const fetch = mockFetch({
      "GET /api/v1/jobs/job1": json(
        job({
          state: "succeeded",
          step: 4,
          model_version_id: "mv1",
          evaluation: {
            benchmark: "gsm8k",
            sample: 2,
            base_score: 0,
            tuned_score: 0.5,
            held_out_loss: 1.234,
            details: {
              base_examples: [{ question: "2+2?", expected: "4", answer: "5", correct: false }],
              tuned_examples: [{ question: "2+2?", expected: "4", answer: "4", correct: true }],
            },
          },
        }),
      ),
      "GET /api/v1/jobs/job1/events": () => sseResponse([{ event: "state", data: { state: "succeeded" } }]),
      "GET /api/v1/jobs/job1/config": () => new Response("adapter: lora\nmax_steps: 4\n", { headers: { "content-type": "application/yaml" } }),
    });
    renderWithClient(page, new ApiClient(memoryStore(SESSION), fetch), "/jobs/job1");
    const scores = await screen.findByLabelText("Scores");
    expect(scores).toHaveTextContent("Base model0%");
    expect(scores).toHaveTextContent("Tuned model50%");
    expect(scores).toHaveTextContent("1.234");
    expect(screen.getByRole("link", { name: "Deploy it" })).toHaveAttribute("href", "/deployments?version=mv1");
    expect(screen.queryByRole("button", { name: "Cancel" })).toBeNull();
    await userEvent.click(screen.getByText("Axolotl config (advanced)"));
    expect(await screen.findByLabelText("Axolotl config")).toHaveTextContent("max_steps: 4");
  });

  it("folds events into the live state", () => {
    let live = liveReducer(INITIAL_LIVE, { event: "progress", data: '{"step": 3, "loss": 1.5}', id: "9-0" });
    live = liveReducer(live, { event: "progress", data: '{"step": 3, "loss": 1.4}' });
    live = liveReducer(live, { event: "log", data: '{"line": "a\\nb"}' });
    live = liveReducer(live, { event: "state", data: "not json" });
    expect(live.loss).toEqual([{ step: 3, value: 1.4 }]);
    expect(live.logs).toEqual(["a", "b"]);
    expect(live.lastId).toBe("9-0");
  });
});
