import { screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi, type MockInstance } from "vitest";
import { ApiClient } from "../api/client";
import { user } from "../test/fixtures";
import { ADMIN_SESSION, SESSION, apiError, json, memoryStore, mockFetch, renderWithClient } from "../test/helpers";
import { ADMINS_ONLY, PEOPLE_PAGE, People, disableQuestion } from "./People";


const ME = user("u1", "ada@example.com", { role: "admin" });
const ALICE = user("u2", "alice@example.com");
const BOB = user("u3", "bob@example.com", { disabled: true });

let consoleError: MockInstance<typeof console.error>;

beforeEach(() => {
  consoleError = vi.spyOn(console, "error");
});

afterEach(() => {
  // no React warnings (keys, act, a11y props) on this page
  expect(consoleError).not.toHaveBeenCalled();
  vi.restoreAllMocks();
});

function rowOf(email: string): HTMLElement {
  const table = screen.getByRole("table", { name: "People with an account" });
  const row = within(table)
    .getAllByRole("row")
    .find((r) => within(r).queryByRole("cell", { name: email }));
  if (!row) throw new Error(`no row for ${email}`);
  return row;
}

describe("People", () => {
  it("lists everyone with their role, joined date and status", async () => {
    const fetch = mockFetch({ "GET /api/v1/admin/users": json({ data: [ME, ALICE, BOB], count: 3 }) });
    renderWithClient(<People />, new ApiClient(memoryStore(ADMIN_SESSION), fetch));

    expect(screen.getByRole("heading", { level: 1, name: "People" })).toBeInTheDocument();
    expect(await screen.findByRole("table", { name: "People with an account" })).toBeInTheDocument();
    const url = new URL(fetch.mock.calls[0][0] as string, "http://x");
    expect(url.searchParams.get("limit")).toBe(String(PEOPLE_PAGE));
    expect(url.searchParams.get("offset")).toBe("0");

    const me = rowOf("ada@example.com");
    expect(me).toHaveTextContent("Administrator");
    expect(me).toHaveTextContent("Active");
    expect(me).toHaveTextContent("You");
    expect(within(me).queryByRole("button")).not.toBeInTheDocument();

    const alice = rowOf("alice@example.com");
    expect(alice).toHaveTextContent("Member");
    expect(within(alice).getByRole("cell", { name: "Active" })).toHaveAttribute("data-label", "Status");
    expect(within(alice).getByRole("button", { name: "Disable alice@example.com" })).toBeInTheDocument();

    const bob = rowOf("bob@example.com");
    expect(bob).toHaveTextContent("Disabled");
    expect(within(bob).getByRole("button", { name: "Enable bob@example.com" })).toBeInTheDocument();

    for (const cell of screen.getAllByRole("cell")) expect(cell).toHaveAttribute("data-label");
    expect(screen.getByText("Showing 1–3 of 3")).toBeInTheDocument();
    // one page: no paging buttons
    expect(screen.queryByRole("button", { name: "Next" })).not.toBeInTheDocument();
    expect(screen.queryByRole("link", { name: /Usage/ })).not.toBeInTheDocument();
  });

  it("disables someone after the confirmation", async () => {
    const patches: { url: string; body: unknown }[] = [];
    const fetch = mockFetch({
      "GET /api/v1/admin/users": json({ data: [ME, ALICE], count: 2 }),
      "PATCH /api/v1/admin/users/u2": ({ url, body }) => {
        patches.push({ url, body });
        return json({ ...ALICE, disabled: true });
      },
    });
    const confirm = vi.spyOn(window, "confirm").mockReturnValue(true);
    renderWithClient(<People />, new ApiClient(memoryStore(ADMIN_SESSION), fetch));

    await userEvent.click(await screen.findByRole("button", { name: "Disable alice@example.com" }));
    expect(confirm).toHaveBeenCalledWith(disableQuestion("alice@example.com"));
    expect(disableQuestion("alice@example.com")).toMatch(/sessions and API keys stop working at once/);

    expect(await screen.findByRole("button", { name: "Enable alice@example.com" })).toBeInTheDocument();
    expect(patches).toEqual([{ url: "/api/v1/admin/users/u2", body: { disabled: true } }]);
    expect(rowOf("alice@example.com")).toHaveTextContent("Disabled");
    expect(screen.getByRole("status")).toHaveTextContent("alice@example.com is disabled");
  });

  it("enables someone again without asking", async () => {
    const patches: unknown[] = [];
    const fetch = mockFetch({
      "GET /api/v1/admin/users": json({ data: [ME, BOB], count: 2 }),
      "PATCH /api/v1/admin/users/u3": ({ body }) => {
        patches.push(body);
        return json({ ...BOB, disabled: false });
      },
    });
    const confirm = vi.spyOn(window, "confirm");
    renderWithClient(<People />, new ApiClient(memoryStore(ADMIN_SESSION), fetch));

    await userEvent.click(await screen.findByRole("button", { name: "Enable bob@example.com" }));
    expect(await screen.findByRole("button", { name: "Disable bob@example.com" })).toBeInTheDocument();
    expect(patches).toEqual([{ disabled: false }]);
    expect(confirm).not.toHaveBeenCalled();
    expect(rowOf("bob@example.com")).toHaveTextContent("Active");
  });

  it("sends nothing when the confirmation is cancelled", async () => {
    const fetch = mockFetch({ "GET /api/v1/admin/users": json({ data: [ME, ALICE], count: 2 }) });
    vi.spyOn(window, "confirm").mockReturnValue(false);
    renderWithClient(<People />, new ApiClient(memoryStore(ADMIN_SESSION), fetch));

    await userEvent.click(await screen.findByRole("button", { name: "Disable alice@example.com" }));
    expect(fetch.mock.calls.filter(([, init]) => init?.method === "PATCH")).toHaveLength(0);
    expect(rowOf("alice@example.com")).toHaveTextContent("Active");
  });

  it("shows the API's sentence when it refuses", async () => {
    const fetch = mockFetch({
      "GET /api/v1/admin/users": json({ data: [ME, ALICE], count: 2 }),
      "PATCH /api/v1/admin/users/u2": apiError(422, "cannot_disable_self", "You cannot disable your own account."),
    });
    vi.spyOn(window, "confirm").mockReturnValue(true);
    renderWithClient(<People />, new ApiClient(memoryStore(ADMIN_SESSION), fetch));

    await userEvent.click(await screen.findByRole("button", { name: "Disable alice@example.com" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("You cannot disable your own account.");
    expect(rowOf("alice@example.com")).toHaveTextContent("Active");
    expect(screen.getByRole("button", { name: "Disable alice@example.com" })).toBeEnabled();
  });

  it("shows the sentence when the list is refused", async () => {
    const fetch = mockFetch({
      "GET /api/v1/admin/users": apiError(403, "admin_required", "Only an administrator can do this."),
    });
    renderWithClient(<People />, new ApiClient(memoryStore(ADMIN_SESSION), fetch));
    expect(await screen.findByRole("alert")).toHaveTextContent("Only an administrator can do this.");
    expect(screen.getByRole("button", { name: "Try again" })).toBeInTheDocument();
  });

  it("pages through 50 at a time", async () => {
    const everyone = Array.from({ length: 120 }, (_, i) =>
      i === 0 ? ME : user(`u${i + 1}`, `person${String(i + 1).padStart(3, "0")}@example.com`),
    );
    const offsets: string[] = [];
    const fetch = mockFetch({
      "GET /api/v1/admin/users": ({ url }) => {
        const params = new URL(url, "http://x").searchParams;
        const limit = Number(params.get("limit"));
        const offset = Number(params.get("offset"));
        offsets.push(String(offset));
        return json({ data: everyone.slice(offset, offset + limit), count: everyone.length });
      },
    });
    renderWithClient(<People />, new ApiClient(memoryStore(ADMIN_SESSION), fetch));

    expect(await screen.findByText("Showing 1–50 of 120")).toBeInTheDocument();
    const previous = screen.getByRole("button", { name: "Previous" });
    expect(previous).toBeDisabled();
    await userEvent.click(screen.getByRole("button", { name: "Next" }));
    expect(await screen.findByText("Showing 51–100 of 120")).toBeInTheDocument();
    expect(offsets).toEqual(["0", "50"]);
    expect(screen.getByRole("cell", { name: "person051@example.com" })).toBeInTheDocument();

    await userEvent.click(screen.getByRole("button", { name: "Next" }));
    expect(await screen.findByText("Showing 101–120 of 120")).toBeInTheDocument();
    expect(screen.getByRole("button", { name: "Next" })).toBeDisabled();

    await userEvent.click(screen.getByRole("button", { name: "Previous" }));
    expect(await screen.findByText("Showing 51–100 of 120")).toBeInTheDocument();
    expect(offsets).toEqual(["0", "50", "100", "50"]);
  });

  it("tells a member this page is for administrators, without asking the API", () => {
    const fetch = mockFetch({});
    renderWithClient(<People />, new ApiClient(memoryStore(SESSION), fetch));
    expect(screen.getByText(ADMINS_ONLY)).toBeInTheDocument();
    expect(screen.queryByRole("table")).not.toBeInTheDocument();
    expect(fetch).not.toHaveBeenCalled();
  });
});
