import { useCallback, useEffect, useRef, useState } from "react";
import { errorMessage, isAbort } from "../api/client";

export interface Resource<T> {
  data: T | undefined;
  error: string | null;
  loading: boolean;
  reload: () => void;
}

/** Load something once (and again every `pollMs` while shown, if given); the last good data
 * stays on screen while a reload runs or fails. */
export function useResource<T>(
  load: (signal: AbortSignal) => Promise<T>,
  deps: unknown[],
  pollMs?: number | ((data: T | undefined) => number | undefined),
): Resource<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<string | null>(null);
  const [loading, setLoading] = useState(true);
  const [tick, setTick] = useState(0);
  const loader = useRef(load);
  loader.current = load;
  const poll = useRef(pollMs);
  poll.current = pollMs;

  useEffect(() => {
    const controller = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    let stopped = false;
    const run = async () => {
      let latest: T | undefined;
      try {
        latest = await loader.current(controller.signal);
        if (stopped) return;
        setData(latest);
        setError(null);
      } catch (err) {
        if (stopped || isAbort(err)) return;
        setError(errorMessage(err));
      } finally {
        if (!stopped) setLoading(false);
      }
      const every = typeof poll.current === "function" ? poll.current(latest) : poll.current;
      if (every && !stopped) timer = setTimeout(run, every);
    };
    setLoading(true);
    void run();
    return () => {
      stopped = true;
      controller.abort();
      if (timer) clearTimeout(timer);
    };
  }, [...deps, tick]);

  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { data, error, loading, reload };
}
