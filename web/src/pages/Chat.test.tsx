import { screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it, vi } from "vitest";
import { ApiClient } from "../api/client";
import { SESSION, apiError, json, memoryStore, mockFetch, renderWithClient } from "../test/helpers";
import { Chat, MessageBubble } from "./Chat";

const base = {
  "GET /v1/models": json({ object: "list", data: [{ id: "tutor", object: "model", created: 0, owned_by: "you" }] }),
  "GET /api/v1/prompt-templates": json({ data: [], count: 0 }),
  "GET /api/v1/kbs": json({ data: [], count: 0 }),
  "GET /api/v1/chats": json({ data: [], count: 0 }),
  "POST /api/v1/chats": json({ id: "c1", title: "hi", model: "tutor", message_count: 0, created_at: null, updated_at: null }, 201),
};

/** A stream the test feeds by hand, to see tokens appear one at a time. */
function manualStream() {
  const encoder = new TextEncoder();
  let push!: (text: string) => void;
  let close!: () => void;
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      push = (text) => controller.enqueue(encoder.encode(text));
      close = () => controller.close();
    },
  });
  return { body, push: (t: string) => push(t), close: () => close() };
}

const token = (content: string) => `data: ${JSON.stringify({ choices: [{ delta: { content } }] })}\n\n`;

describe("Chat", () => {
  it("streams the answer as it comes, recorded into a new chat", async () => {
    const stream = manualStream();
    let sent: unknown;
    const fetch = mockFetch({
      ...base,
      "POST /v1/chat/completions": ({ body }) => {
        sent = body;
        return new Response(stream.body, { headers: { "content-type": "text/event-stream" } });
      },
    });
    renderWithClient(<Chat />, new ApiClient(memoryStore(SESSION), fetch), "/chat");
    await waitFor(() => expect(screen.getByLabelText("Model")).toHaveValue("tutor"));
    await userEvent.type(screen.getByLabelText("Your message"), "hi{Enter}");
    expect(await screen.findByRole("button", { name: "Stop" })).toBeInTheDocument();
    stream.push(token("Hel"));
    expect(await screen.findByText("Hel")).toBeInTheDocument();
    stream.push(token("lo!"));
    expect(await screen.findByText("Hello!")).toBeInTheDocument();
    stream.push("data: [DONE]\n\n");
    stream.close();
    expect(await screen.findByRole("button", { name: "Send" })).toBeInTheDocument();
    expect(sent).toMatchObject({
      model: "tutor",
      stream: true,
      chat_id: "c1",
      max_tokens: 512,
      messages: [{ role: "user", content: "hi" }],
    });
  });

  it("stops the generation with the Stop button, keeping what came", async () => {
    const stream = manualStream();
    let signal: AbortSignal | undefined;
    const fetch = mockFetch(base);
    const wrapped: typeof globalThis.fetch = async (input, init) => {
      if (String(input).endsWith("/v1/chat/completions")) {
        signal = init?.signal ?? undefined;
        signal?.addEventListener("abort", () => stream.body.cancel().catch(() => undefined));
        return new Response(stream.body, { headers: { "content-type": "text/event-stream" } });
      }
      return fetch(input, init);
    };
    renderWithClient(<Chat />, new ApiClient(memoryStore(SESSION), wrapped), "/chat");
    await waitFor(() => expect(screen.getByLabelText("Model")).toHaveValue("tutor"));
    await userEvent.type(screen.getByLabelText("Your message"), "tell me a story{Enter}");
    stream.push(token("Once upon"));
    expect(await screen.findByText("Once upon")).toBeInTheDocument();
    await userEvent.click(screen.getByRole("button", { name: "Stop" }));
    expect(signal?.aborted).toBe(true);
    expect(await screen.findByText("Stopped.")).toBeInTheDocument();
    expect(screen.getByText("Once upon")).toBeInTheDocument();
  });

  it("sends all at once when streaming is off, and shows a refusal as a sentence", async () => {
    const fetch = mockFetch({
      ...base,
      "POST /v1/chat/completions": ({ body }) => {
        expect(body).toMatchObject({ stream: false });
        return apiError(503, "deployment_not_ready", "The deployment 'tutor' is starting, not ready; try again once it is ready.");
      },
    });
    renderWithClient(<Chat />, new ApiClient(memoryStore(SESSION), fetch), "/chat");
    await waitFor(() => expect(screen.getByLabelText("Model")).toHaveValue("tutor"));
    await userEvent.click(screen.getByLabelText("Show the answer as it is written"));
    await userEvent.type(screen.getByLabelText("Your message"), "hello{Enter}");
    expect(await screen.findByRole("alert")).toHaveTextContent("is starting, not ready");
    // The question comes back into the box, to send again.
    expect(screen.getByLabelText("Your message")).toHaveValue("hello");
  });

  it("points to Deployments when no model is ready", async () => {
    const fetch = mockFetch({ ...base, "GET /v1/models": json({ object: "list", data: [] }) });
    renderWithClient(<Chat />, new ApiClient(memoryStore(SESSION), fetch), "/chat");
    expect(await screen.findByRole("link", { name: "Deploy one" })).toHaveAttribute("href", "/deployments");
    expect(screen.getByLabelText("Your message")).toBeDisabled();
  });

  it("offers documents and tasks when the server has them", async () => {
    const fetch = mockFetch({
      ...base,
      "GET /api/v1/kbs": json({ data: [{ id: "kb1", name: "Handbook", external: false, created_at: null }], count: 1 }),
      "GET /api/v1/prompt-templates": json({
        data: [
          {
            name: "summarise",
            title: "Summarise",
            description: "A faithful summary.",
            options: [{ name: "length", type: "string", required: false, description: "", choices: ["short", "long"], default: null }],
          },
        ],
        count: 1,
      }),
    });
    renderWithClient(<Chat />, new ApiClient(memoryStore(SESSION), fetch), "/chat");
    await userEvent.selectOptions(await screen.findByLabelText("Task"), "summarise");
    expect(screen.getByLabelText("length (optional)")).toBeInTheDocument();
    await userEvent.selectOptions(screen.getByLabelText("Answer from documents"), "kb1");
    expect(screen.getByLabelText("Task")).toBeDisabled();
  });

  it("opens a cited document at its page", async () => {
    const fetch = mockFetch({
      "GET /api/v1/kbs/kb1/documents": json({
        data: [{ id: "doc1", kb_id: "kb1", name: "AMCOR.pdf", key: "u1/kb1/AMCOR.pdf", state: "indexed" }],
        count: 1,
      }),
      "GET /api/v1/kbs/kb1/documents/doc1/file": () => new Response("%PDF-1.4", { headers: { "content-type": "application/pdf" } }),
    });
    const tab = { location: { href: "" }, close: vi.fn() };
    vi.spyOn(window, "open").mockReturnValue(tab as unknown as Window);
    // jsdom has no object URLs
    URL.createObjectURL = () => "blob:doc";
    URL.revokeObjectURL = () => undefined;
    renderWithClient(
      <MessageBubble
        message={{
          key: "a",
          role: "assistant",
          content: "It refinanced notes [1].",
          citations: [{ number: 1, kb_id: "kb1", document: "AMCOR.pdf", key: "u1/kb1/AMCOR.pdf", page_start: 2, page_end: 2, pages: "p. 2", snippet: "On June 30, 2022" }],
        }}
      />,
      new ApiClient(memoryStore(SESSION), fetch),
    );
    expect(screen.getByRole("list", { name: "Sources" })).toHaveTextContent("AMCOR.pdf, p. 2");
    await userEvent.click(screen.getByRole("button", { name: "Open AMCOR.pdf" }));
    await vi.waitFor(() => expect(tab.location.href).toBe("blob:doc#page=2"));
  });
});
