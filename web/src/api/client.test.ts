import { describe, expect, it } from "vitest";
import {
  ApiClient,
  ApiError,
  NETWORK_MESSAGE,
  SESSION_ENDED_MESSAGE,
  errorFromResponse,
  localSessionStore,
} from "./client";
import { SESSION, apiError, json, memoryStore, mockFetch } from "../test/helpers";

describe("errorFromResponse", () => {
  it("uses the API's sentence and code", async () => {
    const error = await errorFromResponse(apiError(401, "invalid_credentials", "The email or password is not correct."));
    expect(error).toBeInstanceOf(ApiError);
    expect(error.message).toBe("The email or password is not correct.");
    expect(error.code).toBe("invalid_credentials");
    expect(error.status).toBe(401);
  });

  it("reads OpenAI's error shape too", async () => {
    const error = await errorFromResponse(
      json({ error: { message: "The deployment 'tutor' is starting, not ready.", type: "x", code: "deployment_not_ready" } }, 503),
    );
    expect(error.message).toBe("The deployment 'tutor' is starting, not ready.");
    expect(error.code).toBe("deployment_not_ready");
  });

  it("falls back to a sentence when the body is not the API's", async () => {
    const error = await errorFromResponse(new Response("<html>Bad gateway</html>", { status: 502 }));
    expect(error.message).toMatch(/could not be reached/);
  });
});

describe("ApiClient", () => {
  it("sends the access token and parses JSON", async () => {
    const fetch = mockFetch({ "GET /api/v1/me": ({ headers }) => json({ email: headers.authorization }) });
    const client = new ApiClient(memoryStore(SESSION), fetch);
    await expect(client.get("/api/v1/me")).resolves.toEqual({ email: "Bearer access-1" });
  });

  it("refreshes an expired access token once and retries", async () => {
    let refreshes = 0;
    const fetch = mockFetch({
      "GET /api/v1/me": ({ headers }) =>
        headers.authorization === "Bearer access-2" ? json({ ok: true }) : apiError(401, "token_expired", "expired"),
      "POST /api/v1/auth/refresh": ({ body, headers }) => {
        refreshes += 1;
        // The refresh token is the browser's HttpOnly cookie: the client sends none itself.
        expect(body).toEqual({});
        expect(headers["x-refresh-cookie"]).toBe("1");
        return json({ access_token: "access-2", refresh_token: null, expires_in: 900, user: SESSION.user });
      },
    });
    const store = memoryStore(SESSION);
    const client = new ApiClient(store, fetch);
    const [a, b] = await Promise.all([client.get("/api/v1/me"), client.get("/api/v1/me")]);
    expect(a).toEqual({ ok: true });
    expect(b).toEqual({ ok: true });
    expect(refreshes).toBe(1);
    expect(store.load()).toEqual({ accessToken: "access-2", user: SESSION.user });
  });

  it("ends the session when the refresh token is refused", async () => {
    const fetch = mockFetch({
      "GET /api/v1/me": apiError(401, "token_expired", "expired"),
      "POST /api/v1/auth/refresh": apiError(401, "refresh_token_reused", "Signed out."),
    });
    const store = memoryStore(SESSION);
    const client = new ApiClient(store, fetch);
    const seen: unknown[] = [];
    client.subscribe((s) => seen.push(s));
    await expect(client.get("/api/v1/me")).rejects.toThrow(SESSION_ENDED_MESSAGE);
    expect(client.current).toBeNull();
    expect(store.load()).toBeNull();
    expect(seen).toEqual([null]);
  });

  it("says so in words when the server cannot be reached", async () => {
    const client = new ApiClient(memoryStore(SESSION), async () => {
      throw new TypeError("Failed to fetch");
    });
    await expect(client.get("/api/v1/me")).rejects.toThrow(NETWORK_MESSAGE);
  });

  it("login stores the pair; logout forgets it even if the server fails", async () => {
    const fetch = mockFetch({
      "POST /api/v1/auth/login": ({ headers }) => {
        expect(headers["x-refresh-cookie"]).toBe("1"); // ask for the refresh token as a cookie
        return json({ access_token: "a", refresh_token: null, expires_in: 900, user: SESSION.user });
      },
      "POST /api/v1/auth/logout": apiError(500, "internal_error", "oops"),
    });
    const store = memoryStore();
    const client = new ApiClient(store, fetch);
    await client.login("ada@example.com", "pw");
    expect(store.load()?.accessToken).toBe("a");
    await client.logout();
    expect(store.load()).toBeNull();
  });
});

describe("ApiClient across tabs", () => {
  it("uses the pair another tab already refreshed instead of spending the old refresh token", async () => {
    const refreshed = { ...SESSION, accessToken: "access-from-other-tab" };
    const store = memoryStore(SESSION);
    const fetch = mockFetch({
      "GET /api/v1/me": ({ headers }) => {
        if (headers.authorization === "Bearer access-1") {
          store.save(refreshed); // meanwhile, the other tab refreshed
          return apiError(401, "token_expired", "expired");
        }
        return json({ ok: headers.authorization });
      },
      "POST /api/v1/auth/refresh": () => {
        throw new Error("the rotated refresh token must not be used again");
      },
    });
    const client = new ApiClient(store, fetch);
    await expect(client.get("/api/v1/me")).resolves.toEqual({ ok: "Bearer access-from-other-tab" });
    expect(client.current?.accessToken).toBe("access-from-other-tab");
  });
});

describe("localSessionStore", () => {
  it("drops a refresh token an older client left in localStorage", () => {
    const old = { ...SESSION, refreshToken: "flr_left-behind" };
    localStorage.setItem("forgeline.session", JSON.stringify(old));
    expect(localSessionStore.load()).toEqual(SESSION);
    expect(localStorage.getItem("forgeline.session")).not.toContain("flr_");
    localStorage.clear();
  });
});
