import { screen } from "@testing-library/react";
import { Route, Routes } from "react-router-dom";
import { describe, expect, it } from "vitest";
import { ApiClient } from "../api/client";
import { RequireSession } from "../App";
import { SESSION, memoryStore, mockFetch, renderWithClient } from "../test/helpers";
import { OAuthFinish } from "./OAuthFinish";

function renderAt(hash: string, client: ApiClient) {
  window.history.replaceState(null, "", `/signin/oauth#${hash}`);
  return renderWithClient(
    <Routes>
      <Route path="/signin/oauth" element={<OAuthFinish />} />
      <Route
        path="/"
        element={
          <RequireSession>
            <p>Home page</p>
          </RequireSession>
        }
      />
      <Route path="/signin" element={<p>Sign-in page</p>} />
    </Routes>,
    client,
    "/signin/oauth",
  );
}

describe("OAuthFinish", () => {
  it("takes the tokens from the fragment, forgets them, and goes Home", async () => {
    const store = memoryStore();
    const hash = new URLSearchParams({
      access_token: "a",
      user: JSON.stringify(SESSION.user),
    }).toString();
    renderAt(hash, new ApiClient(store, mockFetch({})));
    expect(await screen.findByText("Home page")).toBeInTheDocument();
    expect(store.load()?.user.email).toBe("ada@example.com");
    expect(window.location.hash).toBe("");
  });

  it("goes back to sign-in when the provider refused", async () => {
    const store = memoryStore();
    renderAt("error=Sign-in+was+cancelled+at+the+provider.", new ApiClient(store, mockFetch({})));
    expect(await screen.findByText("Sign-in page")).toBeInTheDocument();
    expect(store.load()).toBeNull();
  });
});
