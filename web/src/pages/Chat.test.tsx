import { screen, waitFor, within } from "@testing-library/react";
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

const KBS = json({
  data: [
    { id: "kb1", name: "Handbook", bucket: "forgeline-kbs", prefix: "u1/kb1/", external: false, created_at: null },
    { id: "kb2", name: "Filings", bucket: "forgeline-kbs", prefix: "u1/kb2/", external: false, created_at: null },
  ],
  count: 2,
});

const SUMMARISE = json({
  data: [
    {
      name: "summarise",
      title: "Summarise",
      description: "A faithful summary.",
      options: [{ name: "length", type: "string", required: false, description: "", choices: ["short", "long"], default: null }],
    },
  ],
  count: 1,
});

const chat = (id: string, title: string) => ({ id, title, model: "tutor", message_count: 2, created_at: null, updated_at: null });

/** GET /api/v1/chats answering from `list`, which the test (or another route) changes. */
const chatsFrom = (list: ReturnType<typeof chat>[]) => () => json({ data: list, count: list.length });

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

  it("offers tasks, which give way to answers from documents, saying why", async () => {
    const fetch = mockFetch({ ...base, "GET /api/v1/kbs": KBS, "GET /api/v1/prompt-templates": SUMMARISE });
    renderWithClient(<Chat />, new ApiClient(memoryStore(SESSION), fetch), "/chat");
    await userEvent.selectOptions(await screen.findByLabelText("Task"), "summarise");
    expect(screen.getByLabelText("length (optional)")).toBeInTheDocument();
    await userEvent.click(screen.getByLabelText("Answer from my documents"));
    const task = screen.getByLabelText("Task");
    expect(task).toBeDisabled();
    expect(task).toHaveValue("");
    expect(screen.queryByLabelText("length (optional)")).not.toBeInTheDocument();
    // Said as text on the page, not only in a tooltip.
    expect(screen.getByText(/don’t combine with answers from documents/)).toBeVisible();
    expect(task).toHaveAccessibleDescription(/don’t combine with answers from documents/);
    await userEvent.click(screen.getByLabelText("Answer from my documents"));
    expect(screen.getByLabelText("Task")).toBeEnabled();
    expect(screen.queryByText(/don’t combine with answers from documents/)).not.toBeInTheDocument();
  });

  it("answers from the knowledge base picked once the documents switch is on", async () => {
    const sent: Record<string, unknown>[] = [];
    const fetch = mockFetch({
      ...base,
      "GET /api/v1/kbs": KBS,
      "POST /v1/chat/completions": ({ body }) => {
        sent.push(body as Record<string, unknown>);
        return json({ choices: [{ message: { content: `Answer ${sent.length}.` } }] });
      },
    });
    renderWithClient(<Chat />, new ApiClient(memoryStore(SESSION), fetch), "/chat");
    const toggle = await screen.findByLabelText("Answer from my documents");
    expect(toggle).not.toBeChecked();
    expect(screen.queryByLabelText("Knowledge base")).not.toBeInTheDocument();
    await userEvent.click(toggle);
    // The first one by default.
    expect(await screen.findByLabelText("Knowledge base")).toHaveValue("kb1");
    await userEvent.selectOptions(screen.getByLabelText("Knowledge base"), "Filings");
    await userEvent.type(screen.getByLabelText("Your message"), "What was refinanced?{Enter}");
    expect(await screen.findByText("Answer 1.")).toBeInTheDocument();
    expect(sent[0]).toMatchObject({ answer_from_doc: true, knowledge_base: "kb2" });

    await userEvent.click(toggle);
    expect(screen.queryByLabelText("Knowledge base")).not.toBeInTheDocument();
    await userEvent.type(screen.getByLabelText("Your message"), "And you?{Enter}");
    expect(await screen.findByText("Answer 2.")).toBeInTheDocument();
    expect(sent[1]).not.toHaveProperty("answer_from_doc");
    expect(sent[1]).not.toHaveProperty("knowledge_base");
  });

  it("turns documents on with the knowledge base named in ?kb=", async () => {
    const fetch = mockFetch({ ...base, "GET /api/v1/kbs": KBS });
    renderWithClient(<Chat />, new ApiClient(memoryStore(SESSION), fetch), "/chat?kb=kb2");
    expect(await screen.findByLabelText("Knowledge base")).toHaveValue("kb2");
    expect(screen.getByLabelText("Answer from my documents")).toBeChecked();
  });

  it("shows the documents switch without knowledge bases, off, with where to create one", async () => {
    const fetch = mockFetch(base);
    renderWithClient(<Chat />, new ApiClient(memoryStore(SESSION), fetch), "/chat?kb=gone");
    expect(await screen.findByRole("link", { name: "Create a knowledge base" })).toHaveAttribute("href", "/knowledge-bases");
    const toggle = screen.getByLabelText("Answer from my documents");
    expect(toggle).toBeDisabled();
    expect(toggle).not.toBeChecked();
    expect(toggle).toHaveAccessibleDescription(/once they are in a knowledge base/);
    expect(screen.queryByLabelText("Knowledge base")).not.toBeInTheDocument();
  });

  it("renames a saved chat in place: Enter saves, Escape cancels", async () => {
    const list = [chat("c1", "Old title"), chat("c2", "Other")];
    const patches: unknown[] = [];
    const fetch = mockFetch({
      ...base,
      "GET /api/v1/chats": chatsFrom(list),
      "PATCH /api/v1/chats/c1": ({ body }) => {
        patches.push(body);
        list[0] = { ...list[0], title: (body as { title: string }).title };
        return json(list[0]);
      },
    });
    renderWithClient(<Chat />, new ApiClient(memoryStore(SESSION), fetch), "/chat");
    const history = await screen.findByRole("complementary", { name: "Your chats" });

    // Escape: nothing changes, and the keyboard is back on the Rename button.
    await userEvent.click(await within(history).findByRole("button", { name: "Rename Old title" }));
    const box = within(history).getByLabelText("New title for Old title");
    expect(box).toHaveFocus();
    expect(box).toHaveValue("Old title");
    await userEvent.type(box, " draft{Escape}");
    expect(within(history).queryByLabelText("New title for Old title")).not.toBeInTheDocument();
    expect(within(history).getByRole("button", { name: "Rename Old title" })).toHaveFocus();
    expect(patches).toEqual([]);

    await userEvent.keyboard("{Enter}");
    await userEvent.clear(within(history).getByLabelText("New title for Old title"));
    await userEvent.type(within(history).getByLabelText("New title for Old title"), "  Trip plans {Enter}");
    expect(await within(history).findByRole("button", { name: "Trip plans" })).toBeInTheDocument();
    expect(patches).toEqual([{ title: "Trip plans" }]);
    expect(within(history).queryByRole("button", { name: "Old title" })).not.toBeInTheDocument();
    expect(within(history).getByRole("button", { name: "Other" })).toBeInTheDocument();
  });

  it("says why a rename failed, keeping the title box to try again", async () => {
    const fetch = mockFetch({
      ...base,
      "GET /api/v1/chats": json({ data: [chat("c1", "Old title")], count: 1 }),
      "PATCH /api/v1/chats/c1": apiError(503, "deployer_unavailable", "Chats are not available just now; try again in a minute."),
    });
    renderWithClient(<Chat />, new ApiClient(memoryStore(SESSION), fetch), "/chat");
    await userEvent.click(await screen.findByRole("button", { name: "Rename Old title" }));
    await userEvent.type(screen.getByLabelText("New title for Old title"), " 2{Enter}");
    expect(await screen.findByRole("alert")).toHaveTextContent("Chats are not available just now; try again in a minute.");
    expect(screen.getByLabelText("New title for Old title")).toHaveValue("Old title 2");
    // An empty title is not sent: the gateway wants one.
    await userEvent.clear(screen.getByLabelText("New title for Old title"));
    await userEvent.keyboard("{Enter}");
    expect(screen.getByRole("alert")).toHaveTextContent("A chat needs a title");
  });

  it("deletes a saved chat after asking, leaving the open conversation for a new one", async () => {
    const list = [chat("c1", "Trip plans"), chat("c2", "Other")];
    const deleted: string[] = [];
    const fetch = mockFetch({
      ...base,
      "GET /api/v1/chats": chatsFrom(list),
      "GET /api/v1/chats/c1": json({
        ...chat("c1", "Trip plans"),
        messages: [
          { id: "m1", role: "user", content: "Where to in May?", status: "complete", model: "tutor", template: null, citations: [] },
          { id: "m2", role: "assistant", content: "Lisbon.", status: "complete", model: "tutor", template: null, citations: [] },
        ],
      }),
      "DELETE /api/v1/chats/c1": () => {
        deleted.push("c1");
        list.splice(0, 1);
        return json(null, 204);
      },
    });
    const confirm = vi.spyOn(window, "confirm").mockReturnValueOnce(false).mockReturnValueOnce(true);
    renderWithClient(<Chat />, new ApiClient(memoryStore(SESSION), fetch), "/chat?chat=c1");
    expect(await screen.findByText("Lisbon.")).toBeInTheDocument();
    const history = screen.getByRole("complementary", { name: "Your chats" });

    await userEvent.click(await within(history).findByRole("button", { name: "Delete Trip plans" }));
    expect(confirm).toHaveBeenCalledWith(expect.stringContaining("Trip plans"));
    expect(deleted).toEqual([]);
    expect(screen.getByText("Lisbon.")).toBeInTheDocument();

    await userEvent.click(within(history).getByRole("button", { name: "Delete Trip plans" }));
    await waitFor(() => expect(within(history).queryByRole("button", { name: "Trip plans" })).not.toBeInTheDocument());
    expect(deleted).toEqual(["c1"]);
    expect(screen.queryByText("Lisbon.")).not.toBeInTheDocument();
    expect(screen.getByText(/Ask anything to start/)).toBeInTheDocument();
    expect(within(history).getByRole("button", { name: "Other" })).toBeInTheDocument();
    expect(within(history).getByRole("button", { name: "New chat" })).toHaveFocus();
  });

  it("says why a delete failed, keeping the chat", async () => {
    vi.spyOn(window, "confirm").mockReturnValue(true);
    const fetch = mockFetch({
      ...base,
      "GET /api/v1/chats": json({ data: [chat("c1", "Trip plans")], count: 1 }),
      "DELETE /api/v1/chats/c1": apiError(404, "chat_not_found", "That chat was not found."),
    });
    renderWithClient(<Chat />, new ApiClient(memoryStore(SESSION), fetch), "/chat");
    await userEvent.click(await screen.findByRole("button", { name: "Delete Trip plans" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("That chat was not found.");
    expect(screen.getByRole("button", { name: "Trip plans" })).toBeInTheDocument();
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
