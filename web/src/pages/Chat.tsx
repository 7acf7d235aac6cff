import { useEffect, useId, useRef, useState, type FormEvent, type KeyboardEvent } from "react";
import { Link, useSearchParams } from "react-router-dom";
import { sendChat, type ChatTurn } from "../api/chat";
import { errorMessage, isAbort } from "../api/client";
import type {
  ChatRename,
  ChatSession,
  ChatWithMessages,
  Citation,
  KbDocument,
  KnowledgeBase,
  ListOf,
  OpenAIModel,
  PromptTemplate,
} from "../api/types";
import { useApi } from "../auth/AuthContext";
import { ErrorMessage, Spinner } from "../components/ui";
import { useResource } from "../lib/useResource";
import { openDocument } from "./KnowledgeBases";

export interface Message {
  key: string;
  role: "user" | "assistant";
  content: string;
  citations?: Citation[];
  stopped?: boolean;
  pending?: boolean;
}

/** Answer lengths offered, in tokens (about ¾ of a word each). */
export const ANSWER_LENGTHS: [number, string][] = [
  [64, "A sentence or two"],
  [256, "A paragraph"],
  [512, "A page"],
  [2048, "As long as needed"],
];

/** The longest chat title the gateway takes. */
export const CHAT_TITLE_MAX = 200;

let counter = 0;
const nextKey = () => `m${++counter}`;

export function Chat() {
  const client = useApi();
  const [params, setParams] = useSearchParams();
  const models = useResource((signal) => client.get<{ data: OpenAIModel[] }>("/v1/models", signal), [client]);
  const templates = useResource(
    (signal) => client.get<ListOf<PromptTemplate>>("/api/v1/prompt-templates", signal).catch(() => ({ data: [], count: 0 })),
    [client],
  );
  const kbs = useResource(
    (signal) => client.get<ListOf<KnowledgeBase>>("/api/v1/kbs", signal).catch(() => ({ data: [], count: 0 })),
    [client],
  );
  const history = useResource(
    (signal) => client.get<ListOf<ChatSession>>("/api/v1/chats", signal).catch(() => null),
    [client],
  );

  const [model, setModel] = useState(params.get("model") ?? "");
  const [stream, setStream] = useState(true);
  const [maxTokens, setMaxTokens] = useState(512);
  // ?kb= (a knowledge base's "Chat with it") turns answers from documents on, with that one.
  const [docsOn, setDocsOn] = useState(params.has("kb"));
  const [kbId, setKbId] = useState(params.get("kb") ?? "");
  const [template, setTemplate] = useState("");
  const [templateOptions, setTemplateOptions] = useState<Record<string, string>>({});
  const [messages, setMessages] = useState<Message[]>([]);
  const [chatId, setChatId] = useState<string | null>(params.get("chat"));
  const [draft, setDraft] = useState("");
  const [generating, setGenerating] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [note, setNote] = useState<string | null>(null);
  const controller = useRef<AbortController | null>(null);
  const createdHere = useRef<string | null>(null);
  const logRef = useRef<HTMLDivElement>(null);
  const newChatRef = useRef<HTMLButtonElement>(null);
  const ids = {
    heading: useId(),
    model: useId(),
    stream: useId(),
    template: useId(),
    templateNote: useId(),
    draft: useId(),
    length: useId(),
  };

  const modelList = models.data?.data ?? [];
  const chosenModel = model || modelList[0]?.id || "";
  const kbList = kbs.data?.data;
  // The one picked while it still exists, else the first; before the list has come, ?kb= as is.
  let chosenKb = "";
  if (docsOn) chosenKb = kbList ? ((kbList.find((k) => k.id === kbId) ?? kbList[0])?.id ?? "") : kbId;
  const fromDocs = chosenKb !== "";
  const chosenTemplate = fromDocs ? undefined : templates.data?.data.find((t) => t.name === template);

  useEffect(() => () => controller.current?.abort(), []);
  // Follow the answer as it grows, unless the reader scrolled up to read something.
  const following = useRef(true);
  useEffect(() => {
    const log = logRef.current;
    if (log && following.current) log.scrollTop = log.scrollHeight;
  }, [messages]);
  const onLogScroll = () => {
    const log = logRef.current;
    if (log) following.current = log.scrollHeight - log.scrollTop - log.clientHeight < 48;
  };

  // Open a chat from the history (or from ?chat= on a reload); not one just created here.
  useEffect(() => {
    if (!chatId || chatId === createdHere.current) return;
    const abort = new AbortController();
    client
      .get<ChatWithMessages>(`/api/v1/chats/${encodeURIComponent(chatId)}`, abort.signal)
      .then((chat) => {
        setMessages(
          chat.messages
            .filter((m) => m.role !== "system")
            .map((m) => ({
              key: m.id,
              role: m.role as "user" | "assistant",
              content: m.content,
              citations: m.citations,
              stopped: m.status === "stopped",
            })),
        );
        if (chat.model) setModel(chat.model);
      })
      .catch((err: unknown) => {
        if (!isAbort(err)) setError(errorMessage(err));
      });
    return () => abort.abort();
  }, [chatId, client]);

  const openChat = (id: string | null) => {
    if (id !== null && id === chatId) return;
    controller.current?.abort();
    createdHere.current = null;
    setMessages([]);
    setError(null);
    setNote(null);
    setChatId(id);
    const next = new URLSearchParams(params);
    if (id) next.set("chat", id);
    else next.delete("chat");
    setParams(next, { replace: true });
  };

  const onChatDeleted = (id: string) => {
    if (id === chatId) openChat(null);
    history.reload();
    // Its buttons are gone with it: keep the keyboard in the history rather than lost.
    newChatRef.current?.focus();
  };

  const toggleDocs = (on: boolean) => {
    setDocsOn(on);
    // A task (summarise, extract) works on the text you give it, not on documents.
    if (on) {
      setTemplate("");
      setTemplateOptions({});
    }
  };

  const ensureChat = async (firstLine: string): Promise<string | undefined> => {
    if (chatId) return chatId;
    if (history.data === null) return undefined; // history is not available on this server
    try {
      const created = await client.post<ChatSession>("/api/v1/chats", {
        title: firstLine.slice(0, 80),
        model: chosenModel,
      });
      createdHere.current = created.id;
      setChatId(created.id);
      const next = new URLSearchParams(params);
      next.set("chat", created.id);
      setParams(next, { replace: true });
      history.reload();
      return created.id;
    } catch (err) {
      setNote(`This conversation will not be saved: ${errorMessage(err)}`);
      return undefined;
    }
  };

  const send = async (event?: FormEvent) => {
    event?.preventDefault();
    const text = draft.trim();
    if (!text || generating || !chosenModel) return;
    setError(null);
    setNote(null);
    const user: Message = { key: nextKey(), role: "user", content: text };
    const answer: Message = { key: nextKey(), role: "assistant", content: "", pending: true };
    const turns: ChatTurn[] = [...messages, user].map((m) => ({ role: m.role, content: m.content }));
    setMessages((list) => [...list, user, answer]);
    setDraft("");
    following.current = true;
    setGenerating(true);
    const abort = new AbortController();
    controller.current = abort;
    let received = "";
    const update = (change: (m: Message) => Message) =>
      setMessages((list) => list.map((m) => (m.key === answer.key ? change(m) : m)));
    try {
      const id = await ensureChat(text);
      const options: Record<string, unknown> = {};
      for (const option of chosenTemplate?.options ?? []) {
        const value = templateOptions[option.name];
        if (!value) continue;
        if (option.type === "object") {
          try {
            options[option.name] = JSON.parse(value) as unknown;
          } catch {
            throw new Error(`“${option.name}” must be valid JSON.`);
          }
        } else options[option.name] = value;
      }
      for await (const piece of sendChat(
        client,
        {
          model: chosenModel,
          messages: turns,
          stream,
          knowledgeBases: fromDocs ? [chosenKb] : undefined,
          template: chosenTemplate?.name,
          templateOptions: options,
          chatId: id,
          maxTokens,
        },
        abort.signal,
      )) {
        received += piece.content ?? "";
        update((m) => ({
          ...m,
          content: m.content + (piece.content ?? ""),
          citations: piece.citations ?? m.citations,
        }));
      }
      update((m) => ({ ...m, pending: false }));
    } catch (err) {
      if (isAbort(err)) {
        update((m) => ({ ...m, pending: false, stopped: true }));
      } else {
        setError(errorMessage(err));
        // Nothing came back: take the question back into the box, to send again.
        if (received) {
          update((m) => ({ ...m, pending: false, stopped: true }));
        } else {
          setMessages((list) => list.filter((m) => m.key !== answer.key && m.key !== user.key));
          setDraft((current) => current || text);
        }
      }
    } finally {
      setGenerating(false);
      controller.current = null;
    }
  };

  const onKeyDown = (event: KeyboardEvent<HTMLTextAreaElement>) => {
    if (event.key === "Enter" && !event.shiftKey && !event.nativeEvent.isComposing) {
      event.preventDefault();
      void send();
    }
  };

  const noModels = models.data && modelList.length === 0;
  const hasTemplates = (templates.data?.data.length ?? 0) > 0;

  return (
    <div className="chat-page">
      <aside className="chat-history" aria-label="Your chats">
        <button ref={newChatRef} type="button" className="button button-wide" onClick={() => openChat(null)}>
          New chat
        </button>
        {history.data === null && <p className="hint">Chat history is not available on this server.</p>}
        {history.data && history.data.data.length === 0 && <p className="hint">Your saved chats appear here.</p>}
        <ul className="plain-list">
          {history.data?.data.map((c) => (
            <HistoryItem
              key={c.id}
              chat={c}
              active={c.id === chatId}
              onOpen={() => openChat(c.id)}
              onRenamed={history.reload}
              onDeleted={onChatDeleted}
            />
          ))}
        </ul>
      </aside>
      <section className="chat-main" aria-labelledby={ids.heading}>
        {/* The conversation fills the page, so its heading is for screen readers only. */}
        <h1 id={ids.heading} className="visually-hidden">
          Chat
        </h1>
        <div className="chat-controls">
          <div className="field">
            <label htmlFor={ids.model}>Model</label>
            <select
              id={ids.model}
              value={chosenModel}
              onChange={(e) => setModel(e.target.value)}
              disabled={!modelList.length}
            >
              {modelList.length === 0 && <option value="">No model is ready</option>}
              {modelList.map((m) => (
                <option key={m.id} value={m.id}>
                  {m.id}
                </option>
              ))}
              {model && !modelList.some((m) => m.id === model) && modelList.length > 0 && (
                <option value={model}>{model} (not ready)</option>
              )}
            </select>
          </div>
          <DocumentsChoice kbs={kbList} on={docsOn} kbId={chosenKb} onToggle={toggleDocs} onPick={setKbId} />
          {hasTemplates && (
            <div className="field">
              <label htmlFor={ids.template}>Task</label>
              <select
                id={ids.template}
                value={fromDocs ? "" : template}
                disabled={fromDocs}
                aria-describedby={fromDocs ? ids.templateNote : undefined}
                onChange={(e) => {
                  setTemplate(e.target.value);
                  setTemplateOptions({});
                }}
              >
                <option value="">Free chat</option>
                {templates.data?.data.map((t) => (
                  <option key={t.name} value={t.name}>
                    {t.title || t.name}
                  </option>
                ))}
              </select>
            </div>
          )}
          <div className="field field-narrow">
            <label htmlFor={ids.length}>Longest answer</label>
            <select id={ids.length} value={maxTokens} onChange={(e) => setMaxTokens(Number(e.target.value))}>
              {ANSWER_LENGTHS.map(([tokens, label]) => (
                <option key={tokens} value={tokens}>
                  {label}
                </option>
              ))}
            </select>
          </div>
          <div className="field switch">
            <input id={ids.stream} type="checkbox" checked={stream} onChange={(e) => setStream(e.target.checked)} />
            <label htmlFor={ids.stream}>Show the answer as it is written</label>
          </div>
        </div>
        {fromDocs && hasTemplates && (
          <p className="hint chat-controls-note" id={ids.templateNote}>
            Tasks (such as summarise or extract) don’t combine with answers from documents: turn off “Answer from my
            documents” to choose one.
          </p>
        )}
        {chosenTemplate && (
          <TemplateOptions
            template={chosenTemplate}
            values={templateOptions}
            onChange={(name, value) => setTemplateOptions((o) => ({ ...o, [name]: value }))}
          />
        )}
        <ErrorMessage message={models.error} onRetry={models.reload} />
        {models.loading && !models.data && <Spinner label="Loading your models…" />}
        {noModels && (
          <div className="alert alert-info" role="status">
            No model is ready to chat with yet. <Link to="/deployments">Deploy one</Link>; it takes a minute or two.
          </div>
        )}
        <div
          className="chat-log"
          role="log"
          aria-live="polite"
          aria-busy={generating}
          aria-label="Conversation"
          ref={logRef}
          onScroll={onLogScroll}
          // eslint-disable-next-line jsx-a11y/no-noninteractive-tabindex -- the conversation scrolls: it must take the focus to scroll by keyboard (axe scrollable-region-focusable)
          tabIndex={0}
        >
          {messages.length === 0 && !noModels && (
            <p className="hint chat-empty">Ask anything to start. Press Enter to send, Shift+Enter for a new line.</p>
          )}
          {messages.map((m) => (
            <MessageBubble key={m.key} message={m} />
          ))}
        </div>
        {note && <p className="hint">{note}</p>}
        <ErrorMessage message={error} />
        <form className="composer" onSubmit={send}>
          <label htmlFor={ids.draft} className="visually-hidden">
            Your message
          </label>
          <textarea
            id={ids.draft}
            rows={2}
            placeholder={chosenModel ? `Message ${chosenModel}` : "Deploy a model to start chatting"}
            value={draft}
            onChange={(e) => setDraft(e.target.value)}
            onKeyDown={onKeyDown}
            disabled={!chosenModel}
          />
          {generating ? (
            <button type="button" className="button button-danger" onClick={() => controller.current?.abort()}>
              Stop
            </button>
          ) : (
            <button type="submit" className="button button-primary" disabled={!draft.trim() || !chosenModel}>
              Send
            </button>
          )}
        </form>
      </section>
    </div>
  );
}

/** "Answer from my documents": a switch, and which knowledge base once it is on. Without a
 * knowledge base the switch still shows (off), so that people find the feature and where it
 * starts. */
function DocumentsChoice({
  kbs,
  on,
  kbId,
  onToggle,
  onPick,
}: {
  /** Undefined while loading. */
  kbs: KnowledgeBase[] | undefined;
  on: boolean;
  kbId: string;
  onToggle: (on: boolean) => void;
  onPick: (id: string) => void;
}) {
  const ids = { toggle: useId(), kb: useId(), hint: useId() };
  const none = kbs !== undefined && kbs.length === 0;
  return (
    <>
      <div className="chat-docs">
        <div className="field switch">
          <input
            id={ids.toggle}
            type="checkbox"
            checked={on && !none}
            disabled={none}
            aria-describedby={none ? ids.hint : undefined}
            onChange={(e) => onToggle(e.target.checked)}
          />
          <label htmlFor={ids.toggle}>Answer from my documents</label>
        </div>
        {none && (
          <p className="hint" id={ids.hint}>
            Answers can cite your own files once they are in a knowledge base.{" "}
            <Link to="/knowledge-bases">Create a knowledge base</Link>
          </p>
        )}
      </div>
      {on && kbs && kbs.length > 0 && (
        <div className="field">
          <label htmlFor={ids.kb}>Knowledge base</label>
          <select id={ids.kb} value={kbId} onChange={(e) => onPick(e.target.value)}>
            {kbs.map((k) => (
              <option key={k.id} value={k.id}>
                {k.name}
              </option>
            ))}
          </select>
        </div>
      )}
    </>
  );
}

/** One saved chat: opens it, renames it in place (Enter saves, Escape cancels), deletes it. */
function HistoryItem({
  chat,
  active,
  onOpen,
  onRenamed,
  onDeleted,
}: {
  chat: ChatSession;
  active: boolean;
  onOpen: () => void;
  onRenamed: () => void;
  onDeleted: (id: string) => void;
}) {
  const client = useApi();
  const inputId = useId();
  const [editing, setEditing] = useState(false);
  const [draft, setDraft] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [deleted, setDeleted] = useState(false);
  // The new title until the history's reload brings it (no flash of the old one meanwhile).
  const [renamed, setRenamed] = useState<{ from: string; to: string } | null>(null);
  const input = useRef<HTMLInputElement>(null);
  const renameButton = useRef<HTMLButtonElement>(null);
  const wasEditing = useRef(false);
  const title = renamed && renamed.from === chat.title ? renamed.to : chat.title;
  const name = title || "Untitled chat";
  const path = `/api/v1/chats/${encodeURIComponent(chat.id)}`;

  useEffect(() => {
    // Into the title box when renaming starts; back to the Rename button when it ends.
    if (editing) {
      input.current?.focus();
      input.current?.select();
    }
    else if (wasEditing.current) renameButton.current?.focus();
    wasEditing.current = editing;
  }, [editing]);

  const startRename = () => {
    setDraft(title);
    setError(null);
    setEditing(true);
  };
  const cancel = () => {
    if (busy) return;
    setError(null);
    setEditing(false);
  };
  const save = async (event: FormEvent) => {
    event.preventDefault();
    if (busy) return;
    const next = draft.trim();
    if (!next) {
      setError("A chat needs a title: type one, or press Escape to keep the old one.");
      return;
    }
    if (next === title) {
      cancel();
      return;
    }
    setBusy(true);
    setError(null);
    try {
      const body: ChatRename = { title: next };
      const saved = await client.patch<ChatSession>(path, body);
      setRenamed({ from: chat.title, to: saved?.title || next });
      setEditing(false);
      onRenamed();
    } catch (err) {
      setError(errorMessage(err));
    } finally {
      setBusy(false);
    }
  };
  const remove = async () => {
    if (busy || !window.confirm(`Delete the chat "${name}" and all its messages?`)) return;
    setBusy(true);
    setError(null);
    try {
      await client.delete(path);
      setDeleted(true);
      onDeleted(chat.id);
    } catch (err) {
      setError(errorMessage(err));
      setBusy(false);
    }
  };

  if (deleted) return null;
  return (
    <li className="history-entry">
      {editing ? (
        <form className="history-rename" onSubmit={save}>
          <label htmlFor={inputId} className="visually-hidden">
            New title for {name}
          </label>
          <input
            id={inputId}
            ref={input}
            value={draft}
            maxLength={CHAT_TITLE_MAX}
            readOnly={busy}
            onChange={(e) => setDraft(e.target.value)}
            onKeyDown={(e) => {
              if (e.key === "Escape") {
                e.preventDefault();
                cancel();
              }
            }}
          />
          <button type="submit" className="button button-small button-primary">
            {busy ? "Saving…" : "Save"}
          </button>
          <button type="button" className="button button-small" onClick={cancel}>
            Cancel
          </button>
        </form>
      ) : (
        <div className="history-row">
          <button
            type="button"
            className={active ? "history-item active" : "history-item"}
            aria-current={active ? "true" : undefined}
            title={name}
            onClick={onOpen}
          >
            {name}
          </button>
          <button
            ref={renameButton}
            type="button"
            className="button button-small button-quiet history-action"
            aria-label={`Rename ${name}`}
            title="Rename"
            onClick={startRename}
          >
            <span aria-hidden="true">✎</span>
          </button>
          <button
            type="button"
            className="button button-small button-quiet history-action history-action-delete"
            aria-label={`Delete ${name}`}
            title="Delete"
            onClick={remove}
          >
            <span aria-hidden="true">×</span>
          </button>
        </div>
      )}
      <ErrorMessage message={error} />
    </li>
  );
}

function TemplateOptions({
  template,
  values,
  onChange,
}: {
  template: PromptTemplate;
  values: Record<string, string>;
  onChange: (name: string, value: string) => void;
}) {
  const base = useId();
  return (
    <fieldset className="template-options">
      <legend>{template.title || template.name}</legend>
      {template.description && <p className="hint">{template.description}</p>}
      {template.options.map((o) => {
        const id = `${base}-${o.name}`;
        return (
          <div className="field" key={o.name}>
            <label htmlFor={id}>
              {o.name}
              {o.required ? "" : " (optional)"}
            </label>
            {o.choices.length > 0 ? (
              <select id={id} value={values[o.name] ?? o.default ?? ""} onChange={(e) => onChange(o.name, e.target.value)}>
                {!o.required && <option value="">default</option>}
                {o.choices.map((c) => (
                  <option key={c}>{c}</option>
                ))}
              </select>
            ) : (
              <textarea
                id={id}
                rows={o.type === "object" ? 4 : 2}
                spellCheck={o.type !== "object"}
                required={o.required}
                placeholder={o.type === "object" ? '{"type": "object", "properties": {...}}' : undefined}
                value={values[o.name] ?? ""}
                onChange={(e) => onChange(o.name, e.target.value)}
              />
            )}
            {o.description && <p className="hint">{o.description}</p>}
          </div>
        );
      })}
    </fieldset>
  );
}

export function MessageBubble({ message: m }: { message: Message }) {
  return (
    <div className={`bubble bubble-${m.role}`}>
      <span className="visually-hidden">{m.role === "user" ? "You:" : "Assistant:"}</span>
      {m.pending && !m.content ? <Spinner label="Thinking…" /> : <div className="bubble-text">{m.content}</div>}
      {m.stopped && <p className="hint">Stopped.</p>}
      {m.citations && m.citations.length > 0 && (
        <ol className="citations" aria-label="Sources">
          {m.citations.map((c) => (
            <li key={c.number} value={c.number}>
              <strong>{c.document}</strong>
              {c.pages ? `, ${c.pages}` : c.page_start ? `, page ${c.page_start}${c.page_end && c.page_end !== c.page_start ? `–${c.page_end}` : ""}` : ""}
              {c.kb_id && c.key && <OpenSource citation={c} />}
              <p className="hint">{c.snippet}</p>
            </li>
          ))}
        </ol>
      )}
    </div>
  );
}

/** Opens the cited document (at the cited page, for a PDF) in a new tab. */
function OpenSource({ citation: c }: { citation: Citation }) {
  const client = useApi();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const open = async () => {
    setError(null);
    setBusy(true);
    try {
      const kb = encodeURIComponent(c.kb_id ?? "");
      const docs = await client.get<ListOf<KbDocument>>(`/api/v1/kbs/${kb}/documents`);
      const doc = docs.data.find((d) => d.key === c.key && d.state !== "deleted");
      if (!doc) throw new Error("This document is no longer in the knowledge base.");
      await openDocument(client, c.kb_id ?? "", doc.id, c.page_start);
    } catch (err) {
      setError(errorMessage(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <>
      {" "}
      <button type="button" className="button button-small button-quiet" onClick={open} disabled={busy}>
        {busy ? "Opening…" : `Open ${c.document}`}
      </button>
      {error && (
        <span className="error-text" role="alert">
          {" "}
          {error}
        </span>
      )}
    </>
  );
}
