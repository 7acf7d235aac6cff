import { screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { Route, Routes } from "react-router-dom";
import { describe, expect, it } from "vitest";
import { ApiClient } from "../api/client";
import { SESSION, apiError, json, memoryStore, mockFetch, renderWithClient } from "../test/helpers";
import { SignIn } from "./SignIn";

function renderSignIn(client: ApiClient, path = "/signin") {
  return renderWithClient(
    <Routes>
      <Route path="/signin" element={<SignIn />} />
      <Route path="/" element={<p>Home page</p>} />
    </Routes>,
    client,
    path,
  );
}

const noProviders = json({ data: [], count: 0 });

describe("SignIn", () => {
  it("shows the API's error message when the password is wrong", async () => {
    const fetch = mockFetch({
      "GET /api/v1/auth/oauth/providers": noProviders,
      "POST /api/v1/auth/login": apiError(401, "invalid_credentials", "The email or password is not correct."),
    });
    renderSignIn(new ApiClient(memoryStore(), fetch));
    await userEvent.type(screen.getByLabelText("Email"), "ada@example.com");
    await userEvent.type(screen.getByLabelText("Password"), "wrong password");
    await userEvent.click(screen.getByRole("button", { name: "Sign in" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("The email or password is not correct.");
    expect(screen.getByRole("button", { name: "Sign in" })).toBeEnabled();
  });

  it("creates an account, signs in and lands on Home", async () => {
    const calls: string[] = [];
    const fetch = mockFetch({
      "GET /api/v1/auth/oauth/providers": noProviders,
      "POST /api/v1/auth/register": ({ body }) => {
        calls.push("register");
        expect(body).toEqual({ email: "ada@example.com", password: "correct horse battery staple" });
        return json(SESSION.user, 201);
      },
      "POST /api/v1/auth/login": () => {
        calls.push("login");
        return json({ access_token: "a", refresh_token: null, expires_in: 900, user: SESSION.user });
      },
    });
    const store = memoryStore();
    renderSignIn(new ApiClient(store, fetch));
    await userEvent.click(screen.getByRole("tab", { name: "Create account" }));
    await userEvent.type(screen.getByLabelText("Email"), "ada@example.com");
    await userEvent.type(screen.getByLabelText("Password"), "correct horse battery staple");
    await userEvent.click(screen.getByRole("button", { name: "Create account" }));
    expect(await screen.findByText("Home page")).toBeInTheDocument();
    expect(calls).toEqual(["register", "login"]);
    expect(store.load()?.accessToken).toBe("a");
  });

  it("makes the administrator from the setup link make run printed", async () => {
    const fetch = mockFetch({
      "GET /api/v1/auth/oauth/providers": noProviders,
      "POST /api/v1/auth/register": ({ body }) => {
        expect(body).toEqual({ email: "owner@example.com", password: "a long passphrase here", setup_code: "one-time" });
        return json({ ...SESSION.user, role: "admin" }, 201);
      },
      "POST /api/v1/auth/login": json({ access_token: "a", refresh_token: null, expires_in: 900, user: SESSION.user }),
    });
    renderSignIn(new ApiClient(memoryStore(), fetch), "/signin#setup=one-time");
    // The link opens the registration form, saying what this account will be.
    expect(screen.getByRole("tab", { name: "Create account" })).toHaveAttribute("aria-selected", "true");
    expect(screen.getByText(/becomes the administrator/)).toBeInTheDocument();
    await userEvent.type(screen.getByLabelText("Email"), "owner@example.com");
    await userEvent.type(screen.getByLabelText("Password"), "a long passphrase here");
    await userEvent.click(screen.getByRole("button", { name: "Create account" }));
    expect(await screen.findByText("Home page")).toBeInTheDocument();
  });

  it("shows why a registration was refused", async () => {
    const fetch = mockFetch({
      "GET /api/v1/auth/oauth/providers": noProviders,
      "POST /api/v1/auth/register": apiError(422, "weak_password", "The password must be at least 12 characters long."),
    });
    renderSignIn(new ApiClient(memoryStore(), fetch));
    await userEvent.click(screen.getByRole("tab", { name: "Create account" }));
    await userEvent.type(screen.getByLabelText("Email"), "ada@example.com");
    await userEvent.type(screen.getByLabelText("Password"), "short but 12");
    await userEvent.click(screen.getByRole("button", { name: "Create account" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("The password must be at least 12 characters long.");
  });

  it("offers the configured sign-in providers", async () => {
    const fetch = mockFetch({
      "GET /api/v1/auth/oauth/providers": json({
        data: [{ name: "google", display_name: "Google", start_url: "/api/v1/auth/oauth/google/start" }],
        count: 1,
      }),
    });
    renderSignIn(new ApiClient(memoryStore(), fetch));
    const link = await screen.findByRole("link", { name: "Continue with Google" });
    expect(link).toHaveAttribute("href", "/api/v1/auth/oauth/google/start");
  });

  it("says when the server cannot be reached", async () => {
    const client = new ApiClient(memoryStore(), async () => {
      throw new TypeError("Failed to fetch");
    });
    renderSignIn(client);
    await userEvent.type(screen.getByLabelText("Email"), "ada@example.com");
    await userEvent.type(screen.getByLabelText("Password"), "whatever password");
    await userEvent.click(screen.getByRole("button", { name: "Sign in" }));
    await waitFor(() => expect(screen.getByRole("alert")).toHaveTextContent("Could not reach Forgeline"));
  });
});
