import { screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { Route, Routes } from "react-router-dom";
import { describe, expect, it } from "vitest";
import { ApiClient } from "../api/client";
import { ADMIN_SESSION, SESSION, memoryStore, mockFetch, renderWithClient } from "../test/helpers";
import { Layout, NAV_ITEMS } from "./Layout";

describe("Layout", () => {
  it("links every part of the product and signs out", async () => {
    let loggedOut = false;
    const fetch = mockFetch({
      "POST /api/v1/auth/logout": () => {
        loggedOut = true;
        return new Response(null, { status: 204 });
      },
    });
    const store = memoryStore(SESSION);
    renderWithClient(
      <Routes>
        <Route element={<Layout />}>
          <Route path="/" element={<p>Home page</p>} />
        </Route>
        <Route path="/signin" element={<p>Sign-in page</p>} />
      </Routes>,
      new ApiClient(store, fetch),
    );
    const nav = screen.getByRole("navigation", { name: "Main" });
    const labels = Array.from(nav.querySelectorAll("a")).map((a) => a.textContent);
    expect(labels).toEqual(NAV_ITEMS.filter((i) => !i.adminOnly).map((i) => i.label));
    expect(labels).toEqual([
      "Home",
      "Datasets",
      "Fine-tune",
      "Jobs",
      "Models",
      "Deployments",
      "Chat",
      "Knowledge bases",
      "Usage",
      "Settings",
    ]);
    expect(screen.getByRole("link", { name: "Home" })).toHaveAttribute("aria-current", "page");
    expect(screen.getByText("ada@example.com")).toBeInTheDocument();
    const menu = screen.getByRole("button", { name: "Menu" });
    expect(menu).toHaveAttribute("aria-expanded", "false");
    await userEvent.click(menu);
    expect(menu).toHaveAttribute("aria-expanded", "true");
    await userEvent.click(screen.getByRole("button", { name: "Sign out" }));
    expect(await screen.findByText("Sign-in page")).toBeInTheDocument();
    expect(loggedOut).toBe(true);
    expect(store.load()).toBeNull();
  });

  it("shows People to administrators only", () => {
    const shell = (
      <Routes>
        <Route element={<Layout />}>
          <Route path="/" element={<p>Home page</p>} />
        </Route>
      </Routes>
    );
    const member = renderWithClient(shell, new ApiClient(memoryStore(SESSION), mockFetch({})));
    let nav = screen.getByRole("navigation", { name: "Main" });
    expect(within(nav).queryByRole("link", { name: "People" })).not.toBeInTheDocument();
    member.unmount();

    renderWithClient(shell, new ApiClient(memoryStore(ADMIN_SESSION), mockFetch({})));
    nav = screen.getByRole("navigation", { name: "Main" });
    expect(within(nav).getByRole("link", { name: "People" })).toHaveAttribute("href", "/people");
    const labels = Array.from(nav.querySelectorAll("a")).map((a) => a.textContent);
    expect(labels.slice(-3)).toEqual(["Usage", "People", "Settings"]);
  });
});
