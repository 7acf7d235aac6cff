// The shapes the gateway answers with (see /openapi.json). Only the fields the client uses.

export interface User {
  id: string;
  email: string;
  role: "admin" | "member";
  disabled: boolean;
  created_at: string | null;
}

export interface TokenPair {
  access_token: string;
  refresh_token: string;
  token_type: string;
  expires_in: number;
  user: User;
}

export interface ListOf<T> {
  data: T[];
  count: number;
}

export interface OAuthProvider {
  name: string;
  display_name: string;
  start_url: string;
}

export interface ApiKey {
  id: string;
  name: string;
  prefix: string;
  scopes: string[];
  created_at: string | null;
  last_used_at: string | null;
  revoked_at: string | null;
  requests_per_minute?: number | null;
  tokens_per_minute?: number | null;
}

export interface ApiKeyCreated extends ApiKey {
  key: string;
}

export type CredentialKind = "aws" | "gcp" | "wandb";

export interface Credential {
  id: string;
  name: string;
  kind: CredentialKind | string;
  location: string;
  hint: string;
  created_at: string | null;
  checked_at: string | null;
}

export interface BaseModel {
  id: string;
  hub_id: string;
  display_name: string;
  parameters: number;
  context_length: number;
  chat_template: string;
  good_for: string;
  license: string;
  gated: boolean;
  available_locally: boolean;
}

export type DeploymentState = "pending" | "starting" | "ready" | "stopping" | "stopped" | "failed";

export interface Deployment {
  id: string;
  name: string;
  base_model: string | null;
  model_version_id: string | null;
  target: string;
  state: DeploymentState;
  status_message: string;
  failure_code: string | null;
  failure_reason: string | null;
  restarts: number;
  created_at: string | null;
  ready_at: string | null;
  instance_type: string | null;
  usd_per_hour: number | null;
  cost_guard: string | null;
  stop_reason: string | null;
  adapters: { model_version_id: string; name: string }[];
}

export interface Dataset {
  id: string;
  name: string;
  file_name: string;
  state: "inspecting" | "ready" | "invalid" | "failed";
  rows: number;
  format: string | null;
  created_at: string | null;
}

export interface Job {
  id: string;
  name: string;
  base_model: string;
  state: string;
  step: number;
  max_steps: number;
  failure_reason: string | null;
  model_version_id: string | null;
  created_at: string | null;
}

export interface ModelVersion {
  id: string;
  name: string;
  job_id: string;
  base_model: string;
  method: string;
  has_adapter: boolean;
  created_at: string | null;
}

export interface KnowledgeBase {
  id: string;
  name: string;
  external: boolean;
  created_at: string | null;
}

export interface OpenAIModel {
  id: string;
  object: string;
  created: number;
  owned_by: string;
}

export interface Citation {
  number: number;
  kb_id?: string;
  document: string;
  key?: string;
  page_start?: number;
  page_end?: number;
  pages?: string;
  snippet: string;
}

export interface TemplateOption {
  name: string;
  type: "string" | "object";
  required: boolean;
  description: string;
  choices: string[];
  default: string | null;
}

export interface PromptTemplate {
  name: string;
  title: string;
  description: string;
  options: TemplateOption[];
}

export interface ChatSession {
  id: string;
  title: string;
  model: string | null;
  message_count: number;
  created_at: string | null;
  updated_at: string | null;
}

export interface ChatMessage {
  id: string;
  role: "user" | "assistant" | "system";
  content: string;
  status: "complete" | "stopped";
  model: string | null;
  template: string | null;
  citations: Citation[];
}

export interface ChatWithMessages extends ChatSession {
  messages: ChatMessage[];
}
