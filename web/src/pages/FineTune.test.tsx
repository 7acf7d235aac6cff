import { screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { Route, Routes } from "react-router-dom";
import { describe, expect, it } from "vitest";
import { ApiClient } from "../api/client";
import { SESSION, apiError, json, memoryStore, mockFetch, renderWithClient } from "../test/helpers";
import { dataset } from "../test/fixtures";
import { FineTune, formatParameters, goalFor } from "./FineTune";

const catalogue = {
  "GET /api/v1/base-models": json({
    data: [
      {
        id: "smollm2-135m-instruct",
        display_name: "SmolLM2 135M Instruct",
        parameters: 134_515_008,
        good_for: "Trying things out on a CPU.",
        available_locally: true,
        gated: false,
      },
      { id: "llama-3.1-8b", display_name: "Llama 3.1 8B", parameters: 8_030_000_000, good_for: "General chat.", available_locally: false, gated: true },
    ],
    count: 2,
  }),
  "GET /api/v1/datasets": json({ data: [dataset(), dataset({ id: "bad", name: "broken.csv", state: "invalid" })], count: 2 }),
  "GET /api/v1/credentials": json({ data: [], count: 0 }),
};

const estimate = {
  summary: "About 2 min on this machine's CPU.",
  instance: null,
  gpu_memory_gb: 1.2,
  fits: true,
  tokens: 120,
  hours: 0.03,
  usd: null,
  assumptions: ["1 epoch of 120 tokens."],
  warning: null,
};

const page = (
  <Routes>
    <Route path="/fine-tune" element={<FineTune />} />
    <Route path="/jobs/:id" element={<p>job page</p>} />
  </Routes>
);

describe("FineTune", () => {
  it("shows the base models with their size and use, estimates, and starts a job", async () => {
    let estimated: unknown;
    let created: unknown;
    const fetch = mockFetch({
      ...catalogue,
      "POST /api/v1/estimates": ({ body }) => {
        estimated = body;
        return json(estimate);
      },
      "POST /api/v1/jobs": ({ body }) => {
        created = body;
        return json({ id: "job1", name: "x", state: "queued" }, 201);
      },
    });
    renderWithClient(page, new ApiClient(memoryStore(SESSION), fetch), "/fine-tune?dataset=ds1");
    expect(await screen.findByText("Trying things out on a CPU.")).toBeInTheDocument();
    expect(screen.getByText("135M parameters")).toBeInTheDocument();
    expect(screen.getByText("Needs a cloud GPU. Its licence must be accepted on the hub first.")).toBeInTheDocument();
    expect(screen.getByRole("radio", { name: /SmolLM2 135M Instruct/ })).toBeChecked();
    // Only ready datasets are offered; the goal follows the format (chat: answer like my examples).
    expect(screen.getByLabelText("Your examples")).toHaveDisplayValue(/support.jsonl/);
    expect(screen.queryByRole("option", { name: /broken.csv/ })).toBeNull();
    expect(screen.getByRole("radio", { name: /Answer like my examples/ })).toBeChecked();
    expect(await screen.findByText("About 2 min on this machine's CPU.")).toBeInTheDocument();
    expect(estimated).toMatchObject({ base_model: "smollm2-135m-instruct", dataset_id: "ds1", method: "lora", provider: "local" });

    await userEvent.click(screen.getByRole("radio", { name: /Quick trial/ }));
    await userEvent.click(screen.getByText("Advanced settings"));
    await userEvent.type(screen.getByLabelText("Stop after this many steps"), "2");
    const bench = screen.getByLabelText(/Maths questions/);
    await userEvent.clear(bench);
    await userEvent.type(bench, "0");
    await userEvent.click(screen.getByRole("button", { name: "Start fine-tuning" }));
    expect(await screen.findByText("job page")).toBeInTheDocument();
    expect(created).toMatchObject({
      base_model: "smollm2-135m-instruct",
      dataset_id: "ds1",
      stage: "sft",
      method: "lora",
      preset: "quick",
      hyperparameters: { max_steps: 2 },
      benchmark: "none",
      benchmark_sample: 0,
    });
  });

  it("shows a refusal from the API in words", async () => {
    const fetch = mockFetch({
      ...catalogue,
      "POST /api/v1/estimates": json(estimate),
      "POST /api/v1/jobs": apiError(422, "invalid_hyperparameters", "Max_steps must be between 1 and 1,000,000."),
    });
    renderWithClient(page, new ApiClient(memoryStore(SESSION), fetch), "/fine-tune");
    await userEvent.click(await screen.findByRole("button", { name: "Start fine-tuning" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("Max_steps must be between 1 and 1,000,000.");
  });

  it("shows the exact Axolotl config for the choices before anything starts", async () => {
    let previewed: Record<string, unknown> | undefined;
    const fetch = mockFetch({
      ...catalogue,
      "POST /api/v1/estimates": json(estimate),
      "POST /api/v1/jobs/preview": ({ body }) => {
        previewed = body as Record<string, unknown>;
        return json({ id: "p", state: "queued", config_yaml: "base_model: smollm2\nadapter: lora\n" });
      },
    });
    renderWithClient(page, new ApiClient(memoryStore(SESSION), fetch), "/fine-tune");
    await userEvent.click(await screen.findByText("Advanced settings"));
    await userEvent.click(screen.getByRole("button", { name: "Show the Axolotl config" }));
    expect(await screen.findByLabelText("Axolotl config")).toHaveTextContent("adapter: lora");
    expect(previewed).toMatchObject({ dataset_id: dataset().id, method: "lora", provider: "local" });
  });

  it("says why the config cannot be written", async () => {
    const fetch = mockFetch({
      ...catalogue,
      "POST /api/v1/estimates": json(estimate),
      "POST /api/v1/jobs/preview": apiError(422, "dataset_does_not_fit_stage", "This dataset has no preference pairs."),
    });
    renderWithClient(page, new ApiClient(memoryStore(SESSION), fetch), "/fine-tune");
    await userEvent.click(await screen.findByText("Advanced settings"));
    await userEvent.click(screen.getByRole("button", { name: "Show the Axolotl config" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("This dataset has no preference pairs.");
  });

  it("asks for a dataset first when none is ready", async () => {
    const fetch = mockFetch({ ...catalogue, "GET /api/v1/datasets": json({ data: [], count: 0 }) });
    renderWithClient(page, new ApiClient(memoryStore(SESSION), fetch), "/fine-tune");
    expect(await screen.findByRole("link", { name: "Upload one" })).toHaveAttribute("href", "/datasets");
    expect(screen.getByRole("button", { name: "Start fine-tuning" })).toBeDisabled();
  });

  it("picks the goal from the format and writes sizes shortly", () => {
    expect(goalFor("preference")).toBe("dpo");
    expect(goalFor("text")).toBe("pretrain");
    expect(goalFor("alpaca")).toBe("sft");
    expect(formatParameters(8_030_000_000)).toBe("8.0B");
    expect(formatParameters(70_600_000_000)).toBe("71B");
  });
});
