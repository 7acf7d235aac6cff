/// <reference types="vitest/config" />
import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

// `npm run dev` serves the client on :5173 and passes the API to a running gateway
// (`make run`, http://127.0.0.1:8000 unless FORGELINE_URL says otherwise).
const gateway = process.env.FORGELINE_URL ?? "http://127.0.0.1:8000";

export default defineConfig({
  plugins: [react()],
  server: {
    proxy: {
      "/api": { target: gateway, changeOrigin: true },
      "/v1": { target: gateway, changeOrigin: true },
      "/healthz": { target: gateway, changeOrigin: true },
    },
  },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    sourcemap: true,
    // Two pages: the client, and the API reference served at /docs (api-docs.html).
    rollupOptions: { input: { main: "index.html", apiDocs: "api-docs.html" } },
    // Swagger UI is one 1.6 MB bundle, loaded only by /docs.
    chunkSizeWarningLimit: 2000,
  },
  test: {
    environment: "jsdom",
    setupFiles: ["./src/test/setup.ts"],
    include: ["src/**/*.test.{ts,tsx}"],
    restoreMocks: true,
  },
});
