// How much your deployed models are used (requests and tokens on the OpenAI-compatible API,
// Chat included) for a chosen period: in total, per deployment, per API key and per day. An
// administrator can also see anyone's totals.

import { useId, useState } from "react";
import { Link } from "react-router-dom";
import type { ApiKeyUsage, ListOf, UsageCounts, UsageReport, User } from "../api/types";
import { useApi, useAuth } from "../auth/AuthContext";
import { EmptyState, ErrorMessage, formatDate, PageHeader, Spinner } from "../components/ui";
import { useResource } from "../lib/useResource";

export type Period = "7" | "30" | "90" | "all";

export const PERIODS: { value: Period; label: string }[] = [
  { value: "7", label: "Last 7 days" },
  { value: "30", label: "Last 30 days" },
  { value: "90", label: "Last 90 days" },
  { value: "all", label: "All time" },
];

/** The earliest time the API accepts: "all time" starts there. */
const ALL_TIME_START = "2000-01-01T00:00:00.000Z";

/** Where a period starts: midnight UTC (the API counts per UTC day) `days - 1` days before
 * today, so "last 7 days" is today and the six whole days before it. */
export function periodStart(period: Period, now: Date = new Date()): string {
  if (period === "all") return ALL_TIME_START;
  const days = Number(period);
  return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() - (days - 1))).toISOString();
}

function usageQuery(period: Period): string {
  return `start=${encodeURIComponent(periodStart(period))}`;
}

const count = (n: number) => n.toLocaleString();

function plural(n: number, one: string, many: string): string {
  return `${count(n)} ${n === 1 ? one : many}`;
}

/** "2024-05-01" as a day people read (it is a UTC day: shown as such, whatever the zone here). */
function formatDay(day: string): string {
  const date = new Date(`${day}T00:00:00Z`);
  if (Number.isNaN(date.getTime())) return day;
  return date.toLocaleDateString(undefined, { timeZone: "UTC", weekday: "short", day: "numeric", month: "short", year: "numeric" });
}

function isEmpty(report: UsageReport): boolean {
  const t = report.totals;
  return t.requests === 0 && t.total_tokens === 0 && t.aborted === 0 && report.by_deployment.length === 0;
}

export const SESSION_LABEL = "You, signed in to Forgeline (this web app, e.g. Chat)";

function keyLabel(k: ApiKeyUsage): string {
  if (k.kind === "session") return SESSION_LABEL;
  return k.api_key_name || "An unnamed API key";
}

export function Usage() {
  const client = useApi();
  const { session } = useAuth();
  const [period, setPeriod] = useState<Period>("30");
  const periodId = useId();
  const usage = useResource(
    async (signal) => ({ period, report: await client.get<UsageReport>(`/api/v1/usage?${usageQuery(period)}`, signal) }),
    [client, period],
  );
  // What is on screen must be for the period chosen (the last good data stays while a reload runs).
  const report = usage.data?.period === period ? usage.data.report : undefined;
  const periodLabel = PERIODS.find((p) => p.value === period)?.label ?? "";

  return (
    <>
      <PageHeader
        title="Usage"
        intro="How much your deployed models are used: the requests they answered and the tokens (pieces of words) they read and wrote, through your API keys and in Chat."
        actions={
          <div className="field usage-period">
            <label htmlFor={periodId}>Period</label>
            <select id={periodId} value={period} onChange={(e) => setPeriod(e.target.value as Period)}>
              {PERIODS.map((p) => (
                <option key={p.value} value={p.value}>
                  {p.label}
                </option>
              ))}
            </select>
          </div>
        }
      />
      <ErrorMessage message={usage.error} onRetry={usage.reload} />
      {usage.loading && !report && <Spinner label="Loading your usage…" />}
      {report && isEmpty(report) && (
        <EmptyState title="No usage yet: deploy a model and chat with it">
          <p>
            Requests and tokens appear here once a deployed model answers, in Chat or from your own code.{" "}
            <Link to="/deployments">Go to Deployments</Link>.
          </p>
          {period !== "all" && <p className="hint">Used it before? Choose a longer period above.</p>}
        </EmptyState>
      )}
      {report && !isEmpty(report) && <UsageDetails report={report} periodLabel={periodLabel} />}
      {session?.user.role === "admin" && <EveryonesUsage period={period} periodLabel={periodLabel} />}
    </>
  );
}

function Totals({ counts, label }: { counts: UsageCounts; label: string }) {
  return (
    <>
      <dl className="stats" aria-label={label}>
        <div>
          <dt>Requests</dt>
          <dd>{count(counts.requests)}</dd>
        </div>
        <div>
          <dt>Prompt tokens</dt>
          <dd>{count(counts.prompt_tokens)}</dd>
        </div>
        <div>
          <dt>Completion tokens</dt>
          <dd>{count(counts.completion_tokens)}</dd>
        </div>
        <div>
          <dt>Total tokens</dt>
          <dd>{count(counts.total_tokens)}</dd>
        </div>
      </dl>
      {counts.aborted > 0 && (
        <p className="hint">
          {plural(counts.aborted, "answer was", "answers were")} broken off before the end (the reader left, or something
          failed); the tokens up to that point are counted.
        </p>
      )}
    </>
  );
}

function CountCells({ counts }: { counts: UsageCounts }) {
  return (
    <>
      <td data-label="Requests" className="num">
        {count(counts.requests)}
      </td>
      <td data-label="Prompt tokens" className="num">
        {count(counts.prompt_tokens)}
      </td>
      <td data-label="Completion tokens" className="num">
        {count(counts.completion_tokens)}
      </td>
      <td data-label="Total tokens" className="num">
        {count(counts.total_tokens)}
      </td>
    </>
  );
}

function CountHeaders() {
  return (
    <>
      <th scope="col" className="num">
        Requests
      </th>
      <th scope="col" className="num">
        Prompt tokens
      </th>
      <th scope="col" className="num">
        Completion tokens
      </th>
      <th scope="col" className="num">
        Total tokens
      </th>
    </>
  );
}

function UsageDetails({ report, periodLabel }: { report: UsageReport; periodLabel: string }) {
  const days = [...report.by_day].sort((a, b) => b.day.localeCompare(a.day));
  // Bars are drawn by tokens; where no tokens were counted, by requests.
  const measure = (c: UsageCounts) => (days.some((d) => d.total_tokens > 0) ? c.total_tokens : c.requests);
  const most = Math.max(1, ...days.map(measure));
  return (
    <>
      <section className="card" aria-labelledby="usage-totals-title">
        <h2 id="usage-totals-title">Totals: {periodLabel.toLowerCase()}</h2>
        <p className="hint">
          From {formatDate(report.start)} to {formatDate(report.end)}. Prompt tokens are what was sent to a model,
          completion tokens what it wrote back.
        </p>
        <Totals counts={report.totals} label="Your totals" />
      </section>

      <section className="card" aria-labelledby="usage-deployments-title">
        <h2 id="usage-deployments-title">Per deployment</h2>
        {report.by_deployment.length === 0 ? (
          <p className="muted">No deployment answered in this period.</p>
        ) : (
          <div className="table-wrap">
            <table className="usage-table">
              <caption className="visually-hidden">Usage per deployment</caption>
              <thead>
                <tr>
                  <th scope="col">Deployment</th>
                  <CountHeaders />
                </tr>
              </thead>
              <tbody>
                {report.by_deployment.map((d) => (
                  <tr key={d.deployment_id}>
                    <td data-label="Deployment">
                      {d.name ?? (
                        <>
                          A deleted deployment <span className="muted">({d.deployment_id})</span>
                        </>
                      )}
                    </td>
                    <CountCells counts={d} />
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>

      <section className="card" aria-labelledby="usage-keys-title">
        <h2 id="usage-keys-title">Per API key</h2>
        <p className="hint">
          Your own code uses an API key (made in <Link to="/settings">Settings</Link>); what you do here while signed in
          is counted together on one line.
        </p>
        {report.by_api_key.length === 0 ? (
          <p className="muted">Nothing in this period.</p>
        ) : (
          <div className="table-wrap">
            <table className="usage-table">
              <caption className="visually-hidden">Usage per API key</caption>
              <thead>
                <tr>
                  <th scope="col">Used with</th>
                  <CountHeaders />
                </tr>
              </thead>
              <tbody>
                {report.by_api_key.map((k) => (
                  <tr key={k.api_key_id ?? "session"}>
                    <td data-label="Used with">
                      {keyLabel(k)}
                      {k.kind === "api_key" && k.api_key_prefix && (
                        <>
                          {" "}
                          <code className="muted">{k.api_key_prefix}…</code>
                        </>
                      )}
                    </td>
                    <CountCells counts={k} />
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>

      <section className="card" aria-labelledby="usage-days-title">
        <h2 id="usage-days-title">Per day</h2>
        <p className="hint">Days with use, newest first (days in UTC).</p>
        {days.length === 0 ? (
          <p className="muted">Nothing in this period.</p>
        ) : (
          <ol className="plain-list usage-days" aria-labelledby="usage-days-title">
            {days.map((d) => (
              <li key={d.day}>
                <span className="usage-day">{formatDay(d.day)}</span>
                <span className="usage-bar" aria-hidden="true">
                  <span className="usage-bar-fill" style={{ width: `${Math.round((measure(d) / most) * 100)}%` }} />
                </span>
                <span className="usage-day-numbers">
                  {plural(d.requests, "request", "requests")} · {plural(d.total_tokens, "token", "tokens")}
                </span>
              </li>
            ))}
          </ol>
        )}
      </section>
    </>
  );
}

/** The most users the admin list gives at once. */
const USER_PAGE = 200;

function EveryonesUsage({ period, periodLabel }: { period: Period; periodLabel: string }) {
  const client = useApi();
  const userSelect = useId();
  const [userId, setUserId] = useState("");
  const users = useResource(
    (signal) => client.get<ListOf<User>>(`/api/v1/admin/users?limit=${USER_PAGE}`, signal),
    [client],
  );
  const usage = useResource(
    async (signal) =>
      userId
        ? {
            userId,
            period,
            report: await client.get<UsageReport>(
              `/api/v1/admin/users/${encodeURIComponent(userId)}/usage?${usageQuery(period)}`,
              signal,
            ),
          }
        : null,
    [client, userId, period],
  );
  const list = [...(users.data?.data ?? [])].sort((a, b) => a.email.localeCompare(b.email));
  const chosen = list.find((u) => u.id === userId);
  const report = usage.data && usage.data.userId === userId && usage.data.period === period ? usage.data.report : undefined;

  return (
    <section className="card" aria-labelledby="usage-everyone-title">
      <h2 id="usage-everyone-title">Everyone's usage (administrator)</h2>
      <p className="muted">Only administrators see this. Choose someone to see their totals for the period above.</p>
      <ErrorMessage message={users.error} onRetry={users.reload} />
      {users.loading && !users.data && <Spinner label="Loading the users…" />}
      {users.data && (
        <div className="field usage-user">
          <label htmlFor={userSelect}>User</label>
          <select id={userSelect} value={userId} onChange={(e) => setUserId(e.target.value)}>
            <option value="">Choose a user…</option>
            {list.map((u) => (
              <option key={u.id} value={u.id}>
                {`${u.email}${u.role === "admin" ? " (administrator)" : ""}${u.disabled ? " (disabled)" : ""}`}
              </option>
            ))}
          </select>
          {users.data.count > list.length && (
            <p className="hint">
              Showing the first {count(list.length)} of {count(users.data.count)} users.
            </p>
          )}
        </div>
      )}
      {userId && <ErrorMessage message={usage.error} onRetry={usage.reload} />}
      {userId && usage.loading && !report && <Spinner label="Loading their usage…" />}
      <div className="usage-user-totals" aria-live="polite">
        {userId && report && (
          <>
            <h3>
              {chosen?.email ?? "This user"}: {periodLabel.toLowerCase()}
            </h3>
            {isEmpty(report) ? (
              <p className="muted">No usage in this period.</p>
            ) : (
              <Totals counts={report.totals} label={`Totals for ${chosen?.email ?? "this user"}`} />
            )}
          </>
        )}
      </div>
    </section>
  );
}
