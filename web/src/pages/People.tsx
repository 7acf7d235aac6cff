// Administrators: who uses this Forgeline, and turning someone's access off (or on again)
// without a terminal. Disabling someone stops their sessions and API keys at once.

import { useState } from "react";
import { errorMessage } from "../api/client";
import type { ListOf, User } from "../api/types";
import { useApi, useAuth } from "../auth/AuthContext";
import { EmptyState, ErrorMessage, formatDate, Notice, PageHeader, Spinner } from "../components/ui";
import { useResource } from "../lib/useResource";

/** How many people one page of the list shows. */
export const PEOPLE_PAGE = 50;

export const ADMINS_ONLY = "Only administrators can see this page.";

const INTRO =
  "Everyone who has an account on this Forgeline. You can disable someone's account: they are signed out, " +
  "and their API keys stop working at once. Enable it again to let them back in.";

export function disableQuestion(email: string): string {
  return `Disable ${email}? Their sessions and API keys stop working at once, and they cannot sign in until you enable them again.`;
}

const count = (n: number) => n.toLocaleString();

export function People() {
  const { session } = useAuth();
  if (session?.user.role !== "admin") {
    return (
      <>
        <PageHeader title="People" />
        <p>{ADMINS_ONLY}</p>
      </>
    );
  }
  return <PeopleList selfId={session.user.id} />;
}

function PeopleList({ selfId }: { selfId: string }) {
  const client = useApi();
  const [offset, setOffset] = useState(0);
  const list = useResource(
    async (signal) => ({
      offset,
      page: await client.get<ListOf<User>>(`/api/v1/admin/users?limit=${PEOPLE_PAGE}&offset=${offset}`, signal),
    }),
    [client, offset],
  );
  // Users changed here since the list was loaded (what the API answered to the change).
  const [changed, setChanged] = useState<Record<string, User>>({});
  const [busy, setBusy] = useState<string | null>(null);
  const [actionError, setActionError] = useState<string | null>(null);
  const [done, setDone] = useState<string | null>(null);

  // The last page loaded stays on screen while the next one loads.
  const shown = list.data;
  const people = (shown?.page.data ?? []).map((u) => changed[u.id] ?? u);
  const total = shown?.page.count ?? 0;
  const first = shown ? shown.offset + 1 : 0;
  const last = shown ? shown.offset + people.length : 0;

  const setDisabled = async (user: User, disabled: boolean) => {
    if (disabled && !window.confirm(disableQuestion(user.email))) return;
    setBusy(user.id);
    setActionError(null);
    setDone(null);
    try {
      const updated = await client.patch<User>(`/api/v1/admin/users/${encodeURIComponent(user.id)}`, { disabled });
      setChanged((c) => ({ ...c, [updated.id]: updated }));
      setDone(
        updated.disabled
          ? `${updated.email} is disabled: their sessions and API keys no longer work.`
          : `${updated.email} is enabled again and can sign in.`,
      );
    } catch (err) {
      setActionError(errorMessage(err));
    } finally {
      setBusy(null);
    }
  };

  return (
    <>
      <PageHeader title="People" intro={INTRO} />
      <ErrorMessage message={list.error} onRetry={list.reload} />
      <ErrorMessage message={actionError} />
      {done && <Notice tone="success">{done}</Notice>}
      {list.loading && !shown && <Spinner label="Loading the people…" />}
      {shown && people.length === 0 && (
        <EmptyState title="No one here">
          <p>{total > 0 ? "This page is empty: go back to the previous page." : "No accounts yet."}</p>
        </EmptyState>
      )}
      {people.length > 0 && (
        <div className="table-wrap">
          <table className="people-table">
            <caption className="visually-hidden">People with an account</caption>
            <thead>
              <tr>
                <th scope="col">Email</th>
                <th scope="col">Role</th>
                <th scope="col">Joined</th>
                <th scope="col">Status</th>
                <th scope="col">
                  <span className="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {people.map((u) => (
                <tr key={u.id}>
                  <td data-label="Email" className="people-email">
                    {u.email}
                  </td>
                  <td data-label="Role">{u.role === "admin" ? "Administrator" : "Member"}</td>
                  <td data-label="Joined">{formatDate(u.created_at)}</td>
                  <td data-label="Status">
                    <span className={u.disabled ? "badge badge-bad" : "badge badge-good"}>
                      {u.disabled ? "Disabled" : "Active"}
                    </span>
                  </td>
                  <td data-label="" className="cell-actions">
                    {u.id === selfId ? (
                      <span className="muted">You</span>
                    ) : u.disabled ? (
                      <button
                        type="button"
                        className="button button-small"
                        onClick={() => void setDisabled(u, false)}
                        disabled={busy === u.id}
                        aria-label={`Enable ${u.email}`}
                      >
                        {busy === u.id ? "Enabling…" : "Enable"}
                      </button>
                    ) : (
                      <button
                        type="button"
                        className="button button-small button-danger"
                        onClick={() => void setDisabled(u, true)}
                        disabled={busy === u.id}
                        aria-label={`Disable ${u.email}`}
                      >
                        {busy === u.id ? "Disabling…" : "Disable"}
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {shown && total > 0 && (
        <nav className="people-pager" aria-label="Pages of people">
          <p className="muted" aria-live="polite">
            {people.length > 0 ? `Showing ${count(first)}–${count(last)} of ${count(total)}` : `${count(total)} in all`}
          </p>
          {(offset > 0 || total > PEOPLE_PAGE) && (
            <div className="people-pager-buttons">
              <button
                type="button"
                className="button button-small"
                disabled={offset === 0}
                onClick={() => setOffset(Math.max(0, offset - PEOPLE_PAGE))}
              >
                Previous
              </button>
              <button
                type="button"
                className="button button-small"
                disabled={offset + PEOPLE_PAGE >= total}
                onClick={() => setOffset(offset + PEOPLE_PAGE)}
              >
                Next
              </button>
              {list.loading && <Spinner label="Loading…" />}
            </div>
          )}
        </nav>
      )}
    </>
  );
}
