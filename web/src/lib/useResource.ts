import { useCallback, useEffect, useEffectEvent, useState } from "react";
import { errorMessage, isAbort } from "../api/client";

export interface Resource<T> {
  data: T | undefined;
  error: string | null;
  loading: boolean;
  reload: () => void;
}

const sameDeps = (a: readonly unknown[], b: readonly unknown[]) =>
  a.length === b.length && a.every((value, i) => Object.is(value, b[i]));

/** Load something once (and again every `pollMs` while shown, if given); the last good data
 * stays on screen while a reload runs or fails. */
export function useResource<T>(
  load: (signal: AbortSignal) => Promise<T>,
  deps: unknown[],
  pollMs?: number | ((data: T | undefined) => number | undefined),
): Resource<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<string | null>(null);
  const [tick, setTick] = useState(0);
  // What the effect below loads for: the caller's deps and the reloads asked for. Loading lasts
  // until a load for the current key has settled.
  const key = [...deps, tick];
  const [settledFor, setSettledFor] = useState<unknown[] | null>(null);
  const loading = settledFor === null || !sameDeps(settledFor, key);
  // The latest load and poll interval, without restarting the effect when they change.
  const loadLatest = useEffectEvent((signal: AbortSignal) => load(signal));
  const nextPoll = useEffectEvent((latest: T | undefined) => (typeof pollMs === "function" ? pollMs(latest) : pollMs));

  useEffect(() => {
    const controller = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    let stopped = false;
    const run = async () => {
      let latest: T | undefined;
      try {
        latest = await loadLatest(controller.signal);
        if (stopped) return;
        setData(latest);
        setError(null);
      } catch (err) {
        if (stopped || isAbort(err)) return;
        setError(errorMessage(err));
      } finally {
        if (!stopped) setSettledFor(key);
      }
      const every = nextPoll(latest);
      if (every && !stopped) timer = setTimeout(run, every);
    };
    void run();
    return () => {
      stopped = true;
      controller.abort();
      if (timer) clearTimeout(timer);
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps -- key is the caller's deps (plus reloads), passed through like useEffect's own
  }, key);

  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { data, error, loading, reload };
}
