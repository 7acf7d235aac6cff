import { describe, expect, it } from "vitest";
import { ApiClient } from "./client";
import { chatBody, sendChat } from "./chat";
import { SseParser, readSse } from "./sse";
import { SESSION, memoryStore, mockFetch } from "../test/helpers";

function streamOf(parts: string[]): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  return new ReadableStream({
    start(controller) {
      for (const part of parts) controller.enqueue(encoder.encode(part));
      controller.close();
    },
  });
}

describe("SseParser", () => {
  it("parses events split anywhere, with any line ending", () => {
    const parser = new SseParser();
    const text = 'data: {"a":1}\r\n\r\n: keep-alive\n\nevent: done\ndata: x\ndata:y\n\ndata: [DONE]\r\r';
    const events = [];
    for (const ch of text) events.push(...parser.push(ch));
    events.push(...parser.finish());
    expect(events).toEqual([
      { event: "message", data: '{"a":1}' },
      { event: "done", data: "x\ny" },
      { event: "message", data: "[DONE]" },
    ]);
  });

  it("keeps an unterminated last event for finish()", () => {
    const parser = new SseParser();
    expect(parser.push("data: last")).toEqual([]);
    expect(parser.finish()).toEqual([{ event: "message", data: "last" }]);
  });

  it("decodes UTF-8 split across chunks", async () => {
    const bytes = new TextEncoder().encode("data: héllo 👋\n\n");
    const stream = new ReadableStream<Uint8Array>({
      start(c) {
        for (const b of bytes) c.enqueue(new Uint8Array([b]));
        c.close();
      },
    });
    const events = [];
    for await (const e of readSse(stream)) events.push(e.data);
    expect(events).toEqual(["héllo 👋"]);
  });
});

describe("sendChat", () => {
  const chunk = (content: string, extra: Record<string, unknown> = {}) =>
    `data: ${JSON.stringify({ choices: [{ delta: { content }, finish_reason: null }], ...extra })}\n\n`;

  it("yields the tokens as they come, then the citations", async () => {
    const fetch = mockFetch({
      "POST /v1/chat/completions": ({ body }) => {
        expect(body).toMatchObject({ model: "tutor", stream: true, answer_from_doc: true, knowledge_base: "kb1", chat_id: "c1" });
        return new Response(
          streamOf([chunk("Hel"), chunk("lo"), chunk("", { citations: [{ number: 1, document: "a.pdf", snippet: "s" }] }), "data: [DONE]\n\n"]),
          { headers: { "content-type": "text/event-stream" } },
        );
      },
    });
    const client = new ApiClient(memoryStore(SESSION), fetch);
    const updates = [];
    for await (const u of sendChat(client, {
      model: "tutor",
      messages: [{ role: "user", content: "hi" }],
      stream: true,
      knowledgeBases: ["kb1"],
      chatId: "c1",
    })) {
      updates.push(u);
    }
    expect(updates.map((u) => u.content ?? "").join("")).toBe("Hello");
    expect(updates.at(-1)?.citations?.[0].document).toBe("a.pdf");
  });

  it("reads a whole answer when not streamed", async () => {
    const fetch = mockFetch({
      "POST /v1/chat/completions": new Response(
        JSON.stringify({ choices: [{ message: { content: "All at once" }, finish_reason: "stop" }] }),
        { headers: { "content-type": "application/json" } },
      ),
    });
    const client = new ApiClient(memoryStore(SESSION), fetch);
    const updates = [];
    for await (const u of sendChat(client, { model: "m", messages: [], stream: false })) updates.push(u);
    expect(updates).toEqual([{ content: "All at once", finishReason: "stop" }]);
  });

  it("turns an error inside the stream into an error", async () => {
    const fetch = mockFetch({
      "POST /v1/chat/completions": new Response(streamOf([chunk("a"), 'data: {"error": {"message": "The model crashed."}}\n\n']), {
        headers: { "content-type": "text/event-stream" },
      }),
    });
    const client = new ApiClient(memoryStore(SESSION), fetch);
    const run = async () => {
      for await (const u of sendChat(client, { model: "m", messages: [], stream: true })) void u;
    };
    await expect(run()).rejects.toThrow("The model crashed.");
  });

  it("sends a template with its options, and nothing unused", () => {
    expect(
      chatBody({ model: "m", messages: [], stream: false, template: "summarise", templateOptions: { length: "short" } }),
    ).toEqual({ model: "m", messages: [], stream: false, template: "summarise", template_options: { length: "short" } });
  });
});
