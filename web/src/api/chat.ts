// The OpenAI-compatible chat API as the chat page uses it: one call, streamed or not, with
// Forgeline's extra fields (documents, templates, history).

import { ApiError, type ApiClient } from "./client";
import { readSse } from "./sse";
import type { Citation } from "./types";

export interface ChatTurn {
  role: "user" | "assistant" | "system";
  content: string;
}

export interface ChatRequest {
  model: string;
  messages: ChatTurn[];
  stream: boolean;
  /** Answer from these knowledge bases (`answer_from_doc`), with citations. */
  knowledgeBases?: string[];
  template?: string;
  templateOptions?: Record<string, unknown>;
  /** Record the question and the answer in this chat. */
  chatId?: string;
  maxTokens?: number;
  temperature?: number;
}

export interface ChatUpdate {
  /** New text of the answer (a streamed piece, or the whole answer). */
  content?: string;
  citations?: Citation[];
  finishReason?: string | null;
}

export function chatBody(request: ChatRequest): Record<string, unknown> {
  const body: Record<string, unknown> = {
    model: request.model,
    messages: request.messages,
    stream: request.stream,
  };
  if (request.knowledgeBases && request.knowledgeBases.length > 0) {
    body.answer_from_doc = true;
    body.knowledge_base =
      request.knowledgeBases.length === 1 ? request.knowledgeBases[0] : request.knowledgeBases;
  }
  if (request.template) {
    body.template = request.template;
    if (request.templateOptions && Object.keys(request.templateOptions).length > 0) {
      body.template_options = request.templateOptions;
    }
  }
  if (request.chatId) body.chat_id = request.chatId;
  if (request.maxTokens) body.max_tokens = request.maxTokens;
  if (request.temperature !== undefined) body.temperature = request.temperature;
  return body;
}

interface ChunkChoice {
  delta?: { content?: string | null };
  message?: { content?: string | null };
  finish_reason?: string | null;
}

interface Chunk {
  choices?: ChunkChoice[];
  citations?: Citation[];
  error?: { message?: string; code?: string };
}

/** What one parsed chunk (or whole completion) adds to the answer. */
export function updateFromChunk(chunk: Chunk): ChatUpdate {
  if (chunk.error) {
    throw new ApiError(
      500,
      chunk.error.code ?? "stream_error",
      chunk.error.message ?? "The model stopped with an error.",
    );
  }
  const update: ChatUpdate = {};
  const choice = chunk.choices?.[0];
  const text = choice?.delta?.content ?? choice?.message?.content;
  if (text) update.content = text;
  if (choice?.finish_reason) update.finishReason = choice.finish_reason;
  if (chunk.citations && chunk.citations.length > 0) update.citations = chunk.citations;
  return update;
}

/** Send the chat; yields the answer as it comes (one update when not streamed). Abort the
 * signal to stop the generation. */
export async function* sendChat(
  client: ApiClient,
  request: ChatRequest,
  signal?: AbortSignal,
): AsyncGenerator<ChatUpdate> {
  const response = await client.fetch("/v1/chat/completions", {
    method: "POST",
    json: chatBody(request),
    signal,
    headers: request.stream ? { accept: "text/event-stream" } : undefined,
  });
  const streamed = (response.headers.get("content-type") ?? "").includes("text/event-stream");
  if (!streamed || !response.body) {
    yield updateFromChunk((await response.json()) as Chunk);
    return;
  }
  for await (const event of readSse(response.body, signal)) {
    const data = event.data.trim();
    if (!data) continue;
    if (data === "[DONE]") return;
    let chunk: Chunk;
    try {
      chunk = JSON.parse(data) as Chunk;
    } catch {
      continue; // a keep-alive or something not meant for us
    }
    const update = updateFromChunk(chunk);
    if (update.content || update.citations || update.finishReason) yield update;
  }
}
