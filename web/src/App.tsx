import { Navigate, Route, Routes, useLocation } from "react-router-dom";
import type { ReactNode } from "react";
import { useAuth } from "./auth/AuthContext";
import { Layout } from "./components/Layout";
import { SignIn } from "./pages/SignIn";
import { OAuthFinish } from "./pages/OAuthFinish";
import { Home } from "./pages/Home";
import { Settings } from "./pages/Settings";
import { Deployments } from "./pages/Deployments";
import { Chat } from "./pages/Chat";
import { DatasetDetail, Datasets } from "./pages/Datasets";
import { FineTune } from "./pages/FineTune";
import { JobDetail, Jobs } from "./pages/Jobs";
import { Models } from "./pages/Models";
import { KnowledgeBaseDetail, KnowledgeBases } from "./pages/KnowledgeBases";
import { NotFound } from "./pages/NotFound";
import { Usage } from "./pages/Usage";
import { People } from "./pages/People";

export function RequireSession({ children }: { children: ReactNode }) {
  const { session } = useAuth();
  const location = useLocation();
  if (!session) {
    return <Navigate to="/signin" replace state={{ from: location.pathname + location.search }} />;
  }
  return <>{children}</>;
}

export function App() {
  return (
    <Routes>
      <Route path="/signin" element={<SignIn />} />
      <Route path="/signin/oauth" element={<OAuthFinish />} />
      <Route
        element={
          <RequireSession>
            <Layout />
          </RequireSession>
        }
      >
        <Route index element={<Home />} />
        <Route path="datasets" element={<Datasets />} />
        <Route path="datasets/:id" element={<DatasetDetail />} />
        <Route path="fine-tune" element={<FineTune />} />
        <Route path="jobs" element={<Jobs />} />
        <Route path="jobs/:id" element={<JobDetail />} />
        <Route path="models" element={<Models />} />
        <Route path="deployments" element={<Deployments />} />
        <Route path="chat" element={<Chat />} />
        <Route path="knowledge-bases" element={<KnowledgeBases />} />
        <Route path="knowledge-bases/:id" element={<KnowledgeBaseDetail />} />
        <Route path="usage" element={<Usage />} />
        <Route path="people" element={<People />} />
        <Route path="settings" element={<Settings />} />
        <Route path="*" element={<NotFound />} />
      </Route>
    </Routes>
  );
}
