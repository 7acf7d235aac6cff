import { render } from "@testing-library/react";
import type { ReactElement } from "react";
import { MemoryRouter } from "react-router-dom";
import { vi } from "vitest";
import { ApiClient, type Session, type SessionStore } from "../api/client";
import { AuthProvider } from "../auth/AuthContext";

export function json(body: unknown, status = 200): Response {
  return new Response(status === 204 ? null : JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json" },
  });
}

export function apiError(status: number, code: string, message: string): Response {
  return json({ error: { code, message } }, status);
}

type Handler = (request: { url: string; method: string; body: unknown; headers: Record<string, string> }) =>
  | Response
  | Promise<Response>;

/** A fetch that answers from `routes` ("METHOD /path" → handler); anything else is a 404. */
export function mockFetch(routes: Record<string, Handler | Response>) {
  return vi.fn(async (input: RequestInfo | URL, init?: RequestInit) => {
    const url = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
    const method = init?.method ?? "GET";
    const path = url.replace(/^https?:\/\/[^/]+/, "").split("?")[0];
    const route = routes[`${method} ${path}`];
    if (!route) return apiError(404, "not_found", `No mock for ${method} ${path}`);
    if (route instanceof Response) return route.clone();
    const body = typeof init?.body === "string" ? (JSON.parse(init.body) as unknown) : undefined;
    return route({ url, method, body, headers: (init?.headers ?? {}) as Record<string, string> });
  });
}

export function memoryStore(initial: Session | null = null): SessionStore {
  let value = initial;
  return { load: () => value, save: (s) => (value = s) };
}

export const SESSION: Session = {
  accessToken: "access-1",
  user: { id: "u1", email: "ada@example.com", role: "member", disabled: false, created_at: null },
};

/** The same person, as an administrator. */
export const ADMIN_SESSION: Session = { ...SESSION, user: { ...SESSION.user, role: "admin" } };

export function renderWithClient(ui: ReactElement, client: ApiClient, path = "/") {
  return render(
    <MemoryRouter initialEntries={[path]}>
      <AuthProvider client={client}>{ui}</AuthProvider>
    </MemoryRouter>,
  );
}

/** A stand-in for XMLHttpRequest (uploads): reports the body as sent in two halves, then
 * answers with what `respond` returns for the request. */
export function fakeXhr(respond: (request: { url: string; body: FormData; headers: Record<string, string> }) => Response) {
  const requests: { url: string; body: FormData; headers: Record<string, string> }[] = [];
  class FakeXhr {
    status = 0;
    responseText = "";
    private url = "";
    private headers: Record<string, string> = {};
    private responseHeaders = new Headers();
    upload: { onprogress: ((e: { loaded: number; total: number; lengthComputable: boolean }) => void) | null } = {
      onprogress: null,
    };
    onload: (() => void) | null = null;
    onerror: (() => void) | null = null;
    onabort: (() => void) | null = null;
    open(_method: string, url: string) {
      this.url = url;
    }
    setRequestHeader(name: string, value: string) {
      this.headers[name] = value;
    }
    getResponseHeader(name: string) {
      return this.responseHeaders.get(name);
    }
    abort() {
      this.onabort?.();
    }
    send(body: FormData) {
      const request = { url: this.url, body, headers: this.headers };
      requests.push(request);
      setTimeout(async () => {
        this.upload.onprogress?.({ loaded: 50, total: 100, lengthComputable: true });
        await new Promise((r) => setTimeout(r, 10));
        this.upload.onprogress?.({ loaded: 100, total: 100, lengthComputable: true });
        const response = respond(request);
        this.status = response.status;
        this.responseHeaders = response.headers;
        this.responseText = await response.text();
        this.onload?.();
      }, 0);
    }
  }
  vi.stubGlobal("XMLHttpRequest", FakeXhr);
  return requests;
}

/** A streamed text/event-stream response made of `events`. */
export function sseResponse(events: { event: string; data: unknown; id?: string }[]): Response {
  const text = events
    .map((e) => `${e.id ? `id: ${e.id}\n` : ""}event: ${e.event}\ndata: ${JSON.stringify(e.data)}\n\n`)
    .join("");
  return new Response(text, { status: 200, headers: { "content-type": "text/event-stream" } });
}
