import { createContext, useCallback, useContext, useSyncExternalStore, type ReactNode } from "react";
import { api, type ApiClient, type Session } from "../api/client";

interface AuthValue {
  client: ApiClient;
  session: Session | null;
}

const AuthContext = createContext<AuthValue | null>(null);

export function AuthProvider({ client = api, children }: { client?: ApiClient; children: ReactNode }) {
  // An external store: a change made before this component subscribes (a child's effect
  // runs first) is still seen.
  const subscribe = useCallback((onChange: () => void) => client.subscribe(onChange), [client]);
  const session = useSyncExternalStore(subscribe, () => client.current);
  return <AuthContext.Provider value={{ client, session }}>{children}</AuthContext.Provider>;
}

export function useAuth(): AuthValue {
  const value = useContext(AuthContext);
  if (!value) throw new Error("useAuth outside AuthProvider");
  return value;
}

/** The API client of the current app (a test gives its own). */
export function useApi(): ApiClient {
  return useAuth().client;
}
