import { screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it, vi } from "vitest";
import { ApiClient } from "../api/client";
import type { Deployment } from "../api/types";
import { SESSION, apiError, json, memoryStore, mockFetch, renderWithClient } from "../test/helpers";
import { Deployments, pollInterval } from "./Deployments";

const deployment = (over: Partial<Deployment> = {}): Deployment => ({
  id: "d1",
  name: "tutor",
  base_model: "smollm2-135m-instruct",
  model_version_id: null,
  target: "local",
  state: "ready",
  status_message: "Ready.",
  failure_code: null,
  failure_reason: null,
  restarts: 0,
  created_at: null,
  ready_at: null,
  instance_type: null,
  usd_per_hour: null,
  cost_guard: null,
  stop_reason: null,
  adapters: [],
  ...over,
});

const catalogue = {
  "GET /api/v1/base-models": json({
    data: [{ id: "smollm2-135m-instruct", display_name: "SmolLM2 135M Instruct", available_locally: true }],
    count: 1,
  }),
  "GET /api/v1/models": json({ data: [], count: 0 }),
  "GET /api/v1/credentials": json({ data: [], count: 0 }),
};

describe("Deployments", () => {
  it("shows a ready deployment with its endpoint and code examples", async () => {
    const fetch = mockFetch({ ...catalogue, "GET /api/v1/deployments": json({ data: [deployment()], count: 1 }) });
    renderWithClient(<Deployments />, new ApiClient(memoryStore(SESSION), fetch));
    expect(await screen.findByRole("heading", { name: "tutor" })).toBeInTheDocument();
    expect(screen.getByText(`${window.location.origin}/v1`)).toBeInTheDocument();
    expect(screen.getByLabelText("Python example")).toHaveTextContent('model="tutor"');
    await userEvent.click(screen.getByRole("tab", { name: "curl" }));
    expect(screen.getByLabelText("curl example")).toHaveTextContent("/v1/chat/completions");
    expect(screen.getByRole("link", { name: "Chat with it" })).toHaveAttribute("href", "/chat?model=tutor");
  });

  it("deploys a base model and shows a refusal in words", async () => {
    const fetch = mockFetch({
      ...catalogue,
      "GET /api/v1/deployments": json({ data: [], count: 0 }),
      "POST /api/v1/deployments": ({ body }) => {
        expect(body).toEqual({ base_model: "smollm2-135m-instruct", target: "local", name: "demo" });
        return apiError(409, "too_many_deployments", "You already have 3 live deployments; stop one first.");
      },
    });
    renderWithClient(<Deployments />, new ApiClient(memoryStore(SESSION), fetch));
    await userEvent.type(await screen.findByLabelText("Name (optional)"), "demo");
    await userEvent.click(screen.getByRole("button", { name: "Deploy" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("You already have 3 live deployments");
  });

  it("stops a deployment", async () => {
    let state: Deployment["state"] = "ready";
    const fetch = mockFetch({
      ...catalogue,
      "GET /api/v1/deployments": () => json({ data: [deployment({ state })], count: 1 }),
      "POST /api/v1/deployments/d1/stop": () => {
        state = "stopping";
        return json(deployment({ state }));
      },
    });
    vi.spyOn(window, "confirm").mockReturnValue(true);
    renderWithClient(<Deployments />, new ApiClient(memoryStore(SESSION), fetch));
    await userEvent.click(await screen.findByRole("button", { name: "Stop" }));
    expect(await screen.findByText("stopping")).toBeInTheDocument();
  });

  it("polls fast only while something changes", () => {
    expect(pollInterval({ data: [deployment({ state: "starting" })], count: 1 })).toBe(2000);
    expect(pollInterval({ data: [deployment()], count: 1 })).toBe(10000);
  });

  it("deploys a fine-tuned version named in the address, as an adapter", async () => {
    let sent: unknown;
    const fetch = mockFetch({
      ...catalogue,
      "GET /api/v1/models": json({
        data: [{ id: "mv1", name: "tutor-v1", job_id: "j1", base_model: "smollm2-135m-instruct", method: "lora", has_adapter: true, created_at: null }],
        count: 1,
      }),
      "GET /api/v1/deployments": json({ data: [], count: 0 }),
      "POST /api/v1/deployments": ({ body }) => {
        sent = body;
        return json(deployment({ name: "tutor-v1", base_model: null, model_version_id: "mv1", state: "pending", weights: "adapter" }), 201);
      },
    });
    renderWithClient(<Deployments />, new ApiClient(memoryStore(SESSION), fetch), "/deployments?version=mv1");
    expect(await screen.findByLabelText("Model", { selector: "select" })).toHaveValue("version:mv1");
    expect(screen.getByRole("radio", { name: /Merged weights/ })).toBeChecked();
    await userEvent.click(screen.getByRole("radio", { name: /Base model \+ adapter/ }));
    await userEvent.click(screen.getByRole("button", { name: "Deploy" }));
    expect(await screen.findByText(/“tutor-v1” is starting/)).toBeInTheDocument();
    expect(sent).toEqual({ model_version_id: "mv1", weights: "adapter", target: "local" });
  });

  it("shows the server's log when asked", async () => {
    const fetch = mockFetch({
      ...catalogue,
      "GET /api/v1/deployments": json({ data: [deployment()], count: 1 }),
      "GET /api/v1/deployments/d1/logs": json({ lines: ["INFO Starting vLLM", "INFO Ready"] }),
    });
    renderWithClient(<Deployments />, new ApiClient(memoryStore(SESSION), fetch));
    await userEvent.click(await screen.findByText("Server log"));
    expect(await screen.findByLabelText("Server log of tutor")).toHaveTextContent("INFO Starting vLLM");
  });
});
