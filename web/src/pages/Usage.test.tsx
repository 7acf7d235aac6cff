import { screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it, vi } from "vitest";
import { ApiClient } from "../api/client";
import type { UsageCounts, UsageReport } from "../api/types";
import { user } from "../test/fixtures";
import { ADMIN_SESSION, SESSION, apiError, json, memoryStore, mockFetch, renderWithClient } from "../test/helpers";
import { SESSION_LABEL, Usage, periodStart } from "./Usage";

const counts = (requests: number, prompt: number, completion: number, aborted = 0): UsageCounts => ({
  requests,
  prompt_tokens: prompt,
  completion_tokens: completion,
  total_tokens: prompt + completion,
  aborted,
});

const report = (over: Partial<UsageReport> = {}): UsageReport => ({
  start: "2024-05-01T00:00:00Z",
  end: "2024-05-08T12:00:00Z",
  totals: counts(15, 12000, 345, 1),
  by_deployment: [
    { deployment_id: "dep1", name: "tutor", ...counts(12, 11000, 300) },
    { deployment_id: "dep9", name: null, ...counts(3, 1000, 45) },
  ],
  by_api_key: [
    { kind: "api_key", api_key_id: "key1", api_key_name: "my laptop", api_key_prefix: "flk_ab12", ...counts(10, 9000, 200) },
    { kind: "session", api_key_id: null, api_key_name: null, api_key_prefix: null, ...counts(5, 3000, 145) },
  ],
  by_day: [
    { day: "2024-05-02", ...counts(5, 2000, 100) },
    { day: "2024-05-07", ...counts(10, 10000, 245) },
  ],
  ...over,
});

const EMPTY = report({ totals: counts(0, 0, 0), by_deployment: [], by_api_key: [], by_day: [] });


const n = (value: number) => value.toLocaleString();

afterEach(() => {
  vi.useRealTimers();
});

describe("Usage", () => {
  it("shows the totals, and tables per deployment, per API key and per day", async () => {
    const fetch = mockFetch({ "GET /api/v1/usage": json(report()) });
    renderWithClient(<Usage />, new ApiClient(memoryStore(SESSION), fetch));

    const totals = await screen.findByLabelText("Your totals");
    expect(totals).toHaveTextContent(`Requests15`);
    expect(totals).toHaveTextContent(`Prompt tokens${n(12000)}`);
    expect(totals).toHaveTextContent(`Completion tokens345`);
    expect(totals).toHaveTextContent(`Total tokens${n(12345)}`);
    expect(screen.getByText(/1 answer was broken off/)).toBeInTheDocument();

    const deployments = screen.getByRole("table", { name: "Usage per deployment" });
    const depRows = within(deployments).getAllByRole("row").slice(1);
    expect(depRows).toHaveLength(2);
    expect(within(depRows[0]).getByRole("cell", { name: "tutor" })).toHaveAttribute("data-label", "Deployment");
    expect(depRows[0]).toHaveTextContent(n(11300));
    expect(depRows[1]).toHaveTextContent("A deleted deployment (dep9)");
    for (const cell of within(deployments).getAllByRole("cell")) expect(cell).toHaveAttribute("data-label");

    const keys = screen.getByRole("table", { name: "Usage per API key" });
    const keyRows = within(keys).getAllByRole("row").slice(1);
    expect(keyRows[0]).toHaveTextContent("my laptop flk_ab12…");
    expect(keyRows[1]).toHaveTextContent(SESSION_LABEL);
    expect(within(keyRows[1]).getByRole("cell", { name: "5" })).toHaveAttribute("data-label", "Requests");

    const days = screen.getByRole("list", { name: "Per day" });
    const items = within(days).getAllByRole("listitem");
    expect(items).toHaveLength(2);
    // newest first, the numbers as text next to each bar
    expect(items[0]).toHaveTextContent(`10 requests · ${n(10245)} tokens`);
    expect(items[1]).toHaveTextContent(`5 requests · ${n(2100)} tokens`);
    expect(screen.queryByRole("heading", { name: /Everyone's usage/ })).not.toBeInTheDocument();
  });

  it("asks for the chosen period", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(new Date("2024-05-08T12:34:00Z"));
    const starts: (string | null)[] = [];
    const fetch = mockFetch({
      "GET /api/v1/usage": ({ url }) => {
        starts.push(new URL(url, "http://x").searchParams.get("start"));
        return json(report());
      },
    });
    renderWithClient(<Usage />, new ApiClient(memoryStore(SESSION), fetch));
    await screen.findByLabelText("Your totals");
    const period = screen.getByLabelText("Period");
    expect(period).toHaveValue("30");
    expect(starts).toEqual(["2024-04-09T00:00:00.000Z"]);

    await userEvent.selectOptions(period, "Last 7 days");
    expect(await screen.findByRole("heading", { name: "Totals: last 7 days" })).toBeInTheDocument();
    expect(starts.at(-1)).toBe("2024-05-02T00:00:00.000Z");

    await userEvent.selectOptions(period, "All time");
    expect(await screen.findByRole("heading", { name: "Totals: all time" })).toBeInTheDocument();
    expect(starts.at(-1)).toBe("2000-01-01T00:00:00.000Z");
  });

  it("starts a period at midnight UTC", () => {
    const now = new Date("2024-03-01T23:59:00Z");
    expect(periodStart("7", now)).toBe("2024-02-24T00:00:00.000Z");
    expect(periodStart("90", now)).toBe("2023-12-03T00:00:00.000Z");
    expect(periodStart("all", now)).toBe("2000-01-01T00:00:00.000Z");
  });

  it("says what to do when there is no usage yet", async () => {
    const fetch = mockFetch({ "GET /api/v1/usage": json(EMPTY) });
    renderWithClient(<Usage />, new ApiClient(memoryStore(SESSION), fetch));
    expect(await screen.findByRole("heading", { name: "No usage yet: deploy a model and chat with it" })).toBeInTheDocument();
    expect(screen.getByRole("link", { name: "Go to Deployments" })).toHaveAttribute("href", "/deployments");
    expect(screen.queryByRole("table")).not.toBeInTheDocument();
    expect(screen.getByLabelText("Period")).toBeInTheDocument();
  });

  it("says what went wrong, in words", async () => {
    const fetch = mockFetch({
      "GET /api/v1/usage": apiError(503, "unavailable", "Usage cannot be counted just now. Please try again in a moment."),
    });
    renderWithClient(<Usage />, new ApiClient(memoryStore(SESSION), fetch));
    const alert = await screen.findByRole("alert");
    expect(alert).toHaveTextContent("Usage cannot be counted just now. Please try again in a moment.");
    expect(within(alert).getByRole("button", { name: "Try again" })).toBeInTheDocument();
  });

  it("lets an administrator see anyone's totals", async () => {
    const asked: string[] = [];
    const fetch = mockFetch({
      "GET /api/v1/usage": json(EMPTY),
      "GET /api/v1/admin/users": json({
        data: [user("u2", "zoe@example.com", { disabled: true }), user("u1", "ada@example.com", { role: "admin" })],
        count: 2,
      }),
      "GET /api/v1/admin/users/u2/usage": ({ url }) => {
        asked.push(url);
        return json(report({ totals: counts(7, 700, 70) }));
      },
    });
    renderWithClient(<Usage />, new ApiClient(memoryStore(ADMIN_SESSION), fetch));
    const section = await screen.findByRole("region", { name: "Everyone's usage (administrator)" });
    const picker = await within(section).findByLabelText("User");
    expect(within(picker).getAllByRole("option").map((o) => o.textContent)).toEqual([
      "Choose a user…",
      "ada@example.com (administrator)",
      "zoe@example.com (disabled)",
    ]);
    await userEvent.selectOptions(picker, "zoe@example.com (disabled)");
    const totals = await within(section).findByLabelText("Totals for zoe@example.com");
    expect(totals).toHaveTextContent("Requests7");
    expect(totals).toHaveTextContent("Total tokens770");
    expect(asked).toHaveLength(1);
    expect(asked[0]).toContain("start=");
  });

  it("hides everyone's usage from members", async () => {
    const fetch = mockFetch({ "GET /api/v1/usage": json(report()) });
    renderWithClient(<Usage />, new ApiClient(memoryStore(SESSION), fetch));
    await screen.findByLabelText("Your totals");
    expect(screen.queryByRole("region", { name: /Everyone's usage/ })).not.toBeInTheDocument();
    expect(fetch.mock.calls.some(([url]) => String(url).includes("/admin/"))).toBe(false);
  });
});
