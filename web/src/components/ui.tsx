import { useEffect, useRef, useState, type ComponentPropsWithRef, type KeyboardEvent, type ReactNode } from "react";

/** A failed request, as the sentence the API wrote. */
export function ErrorMessage({ message, onRetry }: { message: string | null; onRetry?: () => void }) {
  if (!message) return null;
  return (
    <div className="alert alert-error" role="alert">
      <span>{message}</span>
      {onRetry && (
        <button type="button" className="button button-small" onClick={onRetry}>
          Try again
        </button>
      )}
    </div>
  );
}

export function Notice({ children, tone = "info" }: { children: ReactNode; tone?: "info" | "success" | "warning" }) {
  return (
    <div className={`alert alert-${tone}`} role="status">
      {children}
    </div>
  );
}

export function Spinner({ label }: { label: string }) {
  return (
    <span className="spinner-wrap" role="status" aria-live="polite">
      <span className="spinner" aria-hidden="true" />
      <span>{label}</span>
    </span>
  );
}

export function PageHeader({ title, intro, actions }: { title: string; intro?: ReactNode; actions?: ReactNode }) {
  return (
    <header className="page-header">
      <div>
        <h1>{title}</h1>
        {intro && <p className="muted">{intro}</p>}
      </div>
      {actions && <div className="page-actions">{actions}</div>}
    </header>
  );
}

export function EmptyState({ title, children }: { title: string; children?: ReactNode }) {
  return (
    <div className="empty">
      <h2>{title}</h2>
      {children}
    </div>
  );
}

const STATE_TONE: Record<string, string> = {
  ready: "good",
  indexed: "good",
  succeeded: "good",
  pending: "busy",
  starting: "busy",
  queued: "busy",
  validating: "busy",
  provisioning: "busy",
  training: "busy",
  evaluating: "busy",
  uploading: "busy",
  inspecting: "busy",
  stopping: "busy",
  stopped: "idle",
  cancelled: "idle",
  failed: "bad",
  invalid: "bad",
};

export function StatusBadge({ state }: { state: string }) {
  const tone = STATE_TONE[state] ?? "idle";
  return (
    <span className={`badge badge-${tone}`}>
      {tone === "busy" && <span className="dot-pulse" aria-hidden="true" />}
      {state}
    </span>
  );
}

/** Copies `text`; says so for two seconds (and to screen readers). */
export function CopyButton({ text, label = "Copy" }: { text: string; label?: string }) {
  const [state, setState] = useState<"idle" | "copied" | "failed">("idle");
  const timer = useRef<ReturnType<typeof setTimeout>>(undefined);
  useEffect(() => () => clearTimeout(timer.current), []);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(text);
      setState("copied");
    } catch {
      setState("failed");
    }
    clearTimeout(timer.current);
    timer.current = setTimeout(() => setState("idle"), 2000);
  };
  return (
    <button type="button" className="button button-small" onClick={copy} aria-live="polite">
      {state === "copied" ? "Copied" : state === "failed" ? "Select and copy it by hand" : label}
    </button>
  );
}

/** Preformatted text (code, a config, a log) in a box that may scroll: it takes the keyboard
 * focus, so that keyboard users can scroll it too, and is named by `label`. */
export function ScrollingText({ label, ...props }: Omit<ComponentPropsWithRef<"pre">, "tabIndex" | "aria-label"> & { label: string }) {
  // eslint-disable-next-line jsx-a11y/no-noninteractive-tabindex -- a scroll container must be focusable to scroll by keyboard (WCAG 2.1.1, axe scrollable-region-focusable)
  return <pre {...props} tabIndex={0} aria-label={label} />;
}

export function CodeBlock({ code, label }: { code: string; label: string }) {
  return (
    <figure className="code-block">
      <figcaption>
        <span>{label}</span>
        <CopyButton text={code} label={`Copy ${label}`} />
      </figcaption>
      <ScrollingText label={label}>
        <code>{code}</code>
      </ScrollingText>
    </figure>
  );
}

export function formatDate(value: string | null | undefined): string {
  if (!value) return "—";
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) return "—";
  return date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

/** A row of tabs (WAI-ARIA pattern: arrow keys move between them, one tab stop). The panel
 * with `id={panelId}` and `role="tabpanel"` is the caller's. */
export function Tabs<T extends string>({
  label,
  tabs,
  value,
  onChange,
  panelId,
  small = false,
}: {
  label: string;
  tabs: { value: T; label: string }[];
  value: T;
  onChange: (value: T) => void;
  panelId: string;
  small?: boolean;
}) {
  const refs = useRef<(HTMLButtonElement | null)[]>([]);
  const onKeyDown = (event: KeyboardEvent, index: number) => {
    const step = event.key === "ArrowRight" ? 1 : event.key === "ArrowLeft" ? -1 : 0;
    if (!step) return;
    event.preventDefault();
    const next = (index + step + tabs.length) % tabs.length;
    onChange(tabs[next].value);
    refs.current[next]?.focus();
  };
  return (
    <div className={small ? "tabs small" : "tabs"} role="tablist" aria-label={label}>
      {tabs.map((tab, index) => (
        <button
          key={tab.value}
          ref={(el) => {
            refs.current[index] = el;
          }}
          id={`${panelId}-tab-${tab.value}`}
          type="button"
          role="tab"
          aria-selected={value === tab.value}
          aria-controls={panelId}
          tabIndex={value === tab.value ? 0 : -1}
          className={value === tab.value ? "tab active" : "tab"}
          onClick={() => onChange(tab.value)}
          onKeyDown={(e) => onKeyDown(e, index)}
        >
          {tab.label}
        </button>
      ))}
    </div>
  );
}

/** Log lines, kept scrolled to the newest unless the reader scrolled up to read. */
export function LogTail({ lines, label }: { lines: string[]; label: string }) {
  const ref = useRef<HTMLPreElement>(null);
  const follow = useRef(true);
  useEffect(() => {
    const el = ref.current;
    if (el && follow.current) el.scrollTop = el.scrollHeight;
  }, [lines]);
  return (
    <ScrollingText
      ref={ref}
      className="log"
      label={label}
      onScroll={(e) => {
        const el = e.currentTarget;
        follow.current = el.scrollHeight - el.scrollTop - el.clientHeight < 24;
      }}
    >
      {lines.join("\n")}
    </ScrollingText>
  );
}
