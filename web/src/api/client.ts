// A small typed client for the gateway: JSON in and out, the access token on every call,
// one silent refresh when it has expired, and every failure as an ApiError whose message is
// the sentence the API wrote for people.

import type { TokenPair, User } from "./types";

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;

  constructor(status: number, code: string, message: string) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
  }
}

export const NETWORK_MESSAGE =
  "Could not reach Forgeline. Check your connection (or that the platform is running) and try again.";
export const SESSION_ENDED_MESSAGE = "Your session has ended. Please sign in again.";

/** The sentence to show for anything thrown by a request. */
export function errorMessage(error: unknown): string {
  if (error instanceof ApiError) return error.message;
  if (error instanceof Error && error.message) return error.message;
  return "Something went wrong. Please try again.";
}

export function isAbort(error: unknown): boolean {
  return error instanceof DOMException && error.name === "AbortError";
}

const FALLBACK_BY_STATUS: Record<number, string> = {
  400: "The request was not accepted.",
  401: "You are not signed in, or your session has ended.",
  403: "You are not allowed to do that.",
  404: "That could not be found.",
  409: "That conflicts with something that already exists.",
  413: "That is too large to send.",
  422: "Some of what was entered is not valid.",
  429: "Too many attempts. Please wait a moment and try again.",
  500: "Something went wrong on the server. Please try again.",
  502: "The server could not be reached just now. Please try again.",
  503: "The service is not available just now. Please try again in a moment.",
  504: "The server took too long to answer. Please try again.",
};

/** Turn a failed response into an ApiError: `{"error": {"code", "message"}}` (both the REST
 * API's and OpenAI's shape have these), or a plain sentence for anything else. */
export async function errorFromResponse(response: Response): Promise<ApiError> {
  let code = `http_${response.status}`;
  let message = "";
  try {
    const text = await response.text();
    const body: unknown = text ? JSON.parse(text) : null;
    if (body && typeof body === "object" && "error" in body) {
      const inner = (body as { error: unknown }).error;
      if (inner && typeof inner === "object") {
        const e = inner as { code?: unknown; message?: unknown };
        if (typeof e.code === "string" && e.code) code = e.code;
        if (typeof e.message === "string") message = e.message;
      } else if (typeof inner === "string") {
        message = inner;
      }
    }
  } catch {
    // not JSON: fall back to a sentence for the status
  }
  if (!message) {
    message =
      FALLBACK_BY_STATUS[response.status] ??
      `The request failed (HTTP ${response.status}). Please try again.`;
  }
  return new ApiError(response.status, code, message);
}

/** What a page keeps of a sign-in. The refresh token is not part of it: the gateway keeps
 * it in an HttpOnly cookie for the refresh route, out of every script's reach. */
export interface Session {
  accessToken: string;
  user: User;
}

/** Asks the gateway to set the refresh token as that cookie (and to accept it back). */
const REFRESH_COOKIE_HEADER = { "x-refresh-cookie": "1" };

const STORAGE_KEY = "forgeline.session";

/** Where the session lives between page loads. */
export interface SessionStore {
  load(): Session | null;
  save(session: Session | null): void;
  /** Call back when another tab changed the stored session. */
  watch?(onChange: () => void): void;
}

export const localSessionStore: SessionStore = {
  load() {
    try {
      const raw = localStorage.getItem(STORAGE_KEY);
      if (!raw) return null;
      const value = JSON.parse(raw) as Session & { refreshToken?: unknown };
      if (!value.accessToken || !value.user) return null;
      if ("refreshToken" in value) {
        // Stored by an older client: the token must not stay readable here.
        const session = { accessToken: value.accessToken, user: value.user };
        localStorage.setItem(STORAGE_KEY, JSON.stringify(session));
        return session;
      }
      return value;
    } catch {
      return null;
    }
  },
  save(session) {
    try {
      if (session) localStorage.setItem(STORAGE_KEY, JSON.stringify(session));
      else localStorage.removeItem(STORAGE_KEY);
    } catch {
      // private mode or full storage: the session then lasts as long as the page
    }
  },
  watch(onChange) {
    window.addEventListener("storage", (event) => {
      if (event.key === STORAGE_KEY || event.key === null) onChange();
    });
  },
};

/** Run `task` while holding a lock shared by every tab of this site, where the browser has
 * them: a refresh token works once, so two tabs must not both spend it. */
function withTabLock<T>(name: string, task: () => Promise<T>): Promise<T> {
  const locks = typeof navigator !== "undefined" ? navigator.locks : undefined;
  // request() resolves to what the task's promise resolves to (its typing says Promise<T>).
  return locks ? (locks.request(name, task) as unknown as Promise<T>) : task();
}

export interface RequestOptions {
  method?: string;
  /** Sent as JSON. */
  json?: unknown;
  /** Sent as multipart form data (uploads). */
  form?: FormData;
  signal?: AbortSignal;
  /** Send the access token (default true). */
  auth?: boolean;
  headers?: Record<string, string>;
}

type Listener = (session: Session | null) => void;

export class ApiClient {
  private session: Session | null;
  private refreshing: Promise<boolean> | null = null;
  private listeners = new Set<Listener>();

  constructor(
    private readonly store: SessionStore = localSessionStore,
    private readonly fetchImpl: typeof fetch = (...args) => fetch(...args),
    private readonly baseUrl = "",
  ) {
    this.session = store.load();
    // Signed in, refreshed or out in another tab: follow it here.
    store.watch?.(() => this.adopt(store.load()));
  }

  private adopt(session: Session | null): void {
    if (session?.accessToken === this.session?.accessToken) return;
    this.session = session;
    for (const listener of this.listeners) listener(session);
  }

  get current(): Session | null {
    return this.session;
  }

  get accessToken(): string | null {
    return this.session?.accessToken ?? null;
  }

  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  setSession(session: Session | null): void {
    this.session = session;
    this.store.save(session);
    for (const listener of this.listeners) listener(session);
  }

  /** Store the access token and user from login, refresh or an OAuth sign-in. */
  acceptTokens(pair: Pick<TokenPair, "access_token" | "user">): Session {
    const session = { accessToken: pair.access_token, user: pair.user };
    this.setSession(session);
    return session;
  }

  /** The raw response of a successful call (streams); throws ApiError otherwise. */
  async fetch(path: string, options: RequestOptions = {}): Promise<Response> {
    const useAuth = options.auth ?? true;
    let response = await this.send(path, options, useAuth);
    if (response.status === 401 && useAuth && this.session) {
      const sentWith = this.session.accessToken;
      if (await this.refresh(sentWith)) {
        response = await this.send(path, options, useAuth);
      } else {
        this.setSession(null);
        throw new ApiError(401, "session_ended", SESSION_ENDED_MESSAGE);
      }
    }
    if (!response.ok) throw await errorFromResponse(response);
    return response;
  }

  /** A JSON call; resolves to the parsed body (undefined for 204). */
  async request<T>(path: string, options: RequestOptions = {}): Promise<T> {
    const response = await this.fetch(path, options);
    if (response.status === 204) return undefined as T;
    const text = await response.text();
    return (text ? JSON.parse(text) : undefined) as T;
  }

  get<T>(path: string, signal?: AbortSignal): Promise<T> {
    return this.request<T>(path, { signal });
  }

  post<T>(path: string, json?: unknown, signal?: AbortSignal): Promise<T> {
    return this.request<T>(path, { method: "POST", json: json ?? {}, signal });
  }

  patch<T>(path: string, json: unknown): Promise<T> {
    return this.request<T>(path, { method: "PATCH", json });
  }

  delete(path: string): Promise<void> {
    return this.request<void>(path, { method: "DELETE" });
  }

  async login(email: string, password: string): Promise<Session> {
    const pair = await this.request<TokenPair>("/api/v1/auth/login", {
      method: "POST",
      json: { email, password },
      auth: false,
      headers: REFRESH_COOKIE_HEADER,
    });
    return this.acceptTokens(pair);
  }

  /** A member account; with the instance's one-time setup code, its administrator. */
  async register(email: string, password: string, setupCode?: string): Promise<User> {
    return this.request<User>("/api/v1/auth/register", {
      method: "POST",
      json: setupCode ? { email, password, setup_code: setupCode } : { email, password },
      auth: false,
    });
  }

  /** End the session on the server too; the local session ends whatever the answer. */
  async logout(): Promise<void> {
    try {
      if (this.session) await this.request("/api/v1/auth/logout", { method: "POST" });
    } catch {
      // already ended or unreachable: signing out here is what matters
    } finally {
      this.setSession(null);
    }
  }

  /** Trade the refresh token for a new pair, once for all the calls (and tabs) that found
   * the access token expired at the same time. */
  refresh(expiredAccessToken?: string): Promise<boolean> {
    if (!this.session) return Promise.resolve(false);
    if (expiredAccessToken && this.session.accessToken !== expiredAccessToken) {
      return Promise.resolve(true); // someone else already refreshed it
    }
    if (!this.refreshing) {
      this.refreshing = withTabLock("forgeline-refresh", async () => {
        try {
          // Another tab may have refreshed (or signed out) while we waited for the lock.
          const stored = this.store.load() ?? this.session;
          if (!stored) return false;
          if (expiredAccessToken && stored.accessToken !== expiredAccessToken) {
            this.adopt(stored);
            return true;
          }
          // The refresh token travels as its cookie, which the browser adds itself.
          const response = await this.send(
            "/api/v1/auth/refresh",
            { method: "POST", json: {}, headers: REFRESH_COOKIE_HEADER },
            false,
          );
          if (!response.ok) return false;
          this.acceptTokens((await response.json()) as TokenPair);
          return true;
        } catch {
          return false;
        } finally {
          this.refreshing = null;
        }
      });
    }
    return this.refreshing;
  }

  private async send(path: string, options: RequestOptions, useAuth: boolean): Promise<Response> {
    const headers: Record<string, string> = { accept: "application/json", ...options.headers };
    let body: BodyInit | undefined;
    if (options.form) {
      body = options.form;
    } else if (options.json !== undefined) {
      body = JSON.stringify(options.json);
      headers["content-type"] = "application/json";
    }
    if (useAuth && this.session) headers.authorization = `Bearer ${this.session.accessToken}`;
    try {
      return await this.fetchImpl(this.baseUrl + path, {
        method: options.method ?? "GET",
        headers,
        body,
        signal: options.signal,
      });
    } catch (error) {
      if (isAbort(error)) throw error;
      throw new ApiError(0, "network_error", NETWORK_MESSAGE);
    }
  }
}

/** The client the app uses. */
export const api = new ApiClient();
