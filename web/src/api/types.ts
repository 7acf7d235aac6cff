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
  /** null for the web client: its refresh token is an HttpOnly cookie. */
  refresh_token: string | null;
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

export interface GpuInstance {
  provider: "aws" | "gcp";
  instance_type: string;
  gpu: string;
  gpus: number;
  gpu_memory_gb: number;
  usd_per_hour: number;
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
  gpu_memory_gb?: Record<string, number>;
  recommended_instances?: Record<string, GpuInstance[]>;
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
  weights?: "merged" | "adapter";
  adapters: { model_version_id: string; name: string }[];
}

export type DatasetFormat = "alpaca" | "chat" | "sharegpt" | "preference" | "text";

export interface DatasetProblem {
  line: number;
  unit: string;
  field: string | null;
  message: string;
  fix: string;
}

export interface TokenStats {
  rows: number;
  total_tokens: number;
  min: number;
  mean: number;
  p50: number;
  p95: number;
  max: number;
  over_sequence_len: number;
  sequence_len: number;
  tokenizer: string;
}

export interface Dataset {
  id: string;
  name: string;
  file_name: string;
  size?: number;
  file_type?: string;
  state: "inspecting" | "ready" | "invalid" | "failed";
  detected_format?: DatasetFormat | null;
  detection_reason?: string;
  format: DatasetFormat | string | null;
  format_confirmed?: boolean;
  columns?: string[];
  rows: number;
  valid_rows?: number;
  problem_count?: number;
  problems?: DatasetProblem[];
  token_stats?: TokenStats | null;
  token_stats_note?: string | null;
  base_model?: string;
  sequence_len?: number;
  eval_fraction?: number;
  train_rows?: number;
  eval_rows?: number;
  failure_code?: string | null;
  failure_reason?: string | null;
  created_at: string | null;
}

export interface PreviewRow {
  line: number;
  unit: string;
  data: Record<string, unknown> | null;
  error: string | null;
  eval: boolean;
}

export interface Estimate {
  summary: string;
  instance: GpuInstance | null;
  gpu_memory_gb: number;
  fits: boolean;
  tokens: number;
  hours: number;
  usd: number | null;
  assumptions: string[];
  warning: string | null;
}

export interface EvaluationExample {
  question: string;
  expected: string;
  answer: string;
  correct: boolean;
}

export interface Evaluation {
  benchmark: string;
  sample: number;
  base_score: number | null;
  tuned_score: number | null;
  held_out_loss: number | null;
  details: { base_examples?: EvaluationExample[]; tuned_examples?: EvaluationExample[] };
}

export type JobState =
  | "queued"
  | "validating"
  | "provisioning"
  | "training"
  | "evaluating"
  | "uploading"
  | "succeeded"
  | "failed"
  | "cancelled";

export interface Job {
  id: string;
  name: string;
  base_model: string;
  dataset_id?: string;
  stage?: string;
  method?: string;
  provider?: string;
  preset?: string;
  hyperparameters?: Record<string, unknown>;
  state: JobState | string;
  failure_code?: string | null;
  failure_reason: string | null;
  cancel_requested?: boolean;
  step: number;
  max_steps: number;
  last_loss?: number | null;
  last_eval_loss?: number | null;
  evaluation?: Evaluation | null;
  model_version_id: string | null;
  created_at: string | null;
  started_at?: string | null;
  finished_at?: string | null;
  hub_dataset?: string | null;
  machine?: string | null;
}

export interface ModelVersion {
  id: string;
  name: string;
  job_id: string;
  base_model: string;
  dataset_id?: string;
  hub_dataset?: string | null;
  method: string;
  metrics?: Record<string, unknown>;
  has_adapter: boolean;
  created_at: string | null;
}

export type DocumentState = "pending" | "indexed" | "failed" | "deleted";

export interface KbDocument {
  id: string;
  kb_id: string;
  name: string;
  key: string;
  etag: string;
  state: DocumentState;
  failure: { code: string; reason: string } | null;
  chunks: number;
  pages: number;
  size: number;
  updated_at: string | null;
}

export interface UploadedFile {
  name: string;
  source: string;
  key: string | null;
  document_id: string | null;
  state: DocumentState | null;
  error: { code: string; message: string } | null;
}

export interface UploadResult {
  data: UploadedFile[];
  count: number;
  stored: number;
  failed: number;
}

export interface KnowledgeBase {
  id: string;
  name: string;
  embedding_model?: string;
  /** Where its documents are read from: the platform's bucket, or the user's own when `external`. */
  bucket: string;
  /** The folder inside `bucket`, ending in "/" (or "" for the whole bucket). */
  prefix: string;
  external: boolean;
  created_at: string | null;
}

/** The user's own S3-compatible bucket, attached read-only. The secret is write-only: the API
 * never returns it. */
export interface ExternalBucketCreate {
  bucket: string;
  prefix?: string;
  /** Omitted: AWS S3 itself. */
  endpoint_url?: string;
  region?: string;
  access_key_id: string;
  secret_access_key: string;
}

export interface KnowledgeBaseCreate {
  name: string;
  external_bucket?: ExternalBucketCreate;
}

/** What one "compare the bucket with the index now" pass did. */
export interface ReconcileResult {
  queued_for_indexing: number;
  removed: number;
  unchanged: number;
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

/** PATCH /api/v1/chats/{id}. */
export interface ChatRename {
  /** 1 to 200 characters (the gateway's limit). */
  title: string;
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

// --- usage (GET /api/v1/usage, GET /api/v1/admin/users/{id}/usage) ---

export interface UsageCounts {
  requests: number;
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  /** Generations broken off before the end (their tokens so far are counted). */
  aborted: number;
}

export interface DeploymentUsage extends UsageCounts {
  deployment_id: string;
  /** Null once the deployment is deleted. */
  name: string | null;
}

export interface ApiKeyUsage extends UsageCounts {
  /** "session": the user's signed-in sessions (the web client), all together. */
  kind: "api_key" | "session";
  api_key_id: string | null;
  api_key_name: string | null;
  api_key_prefix: string | null;
}

export interface DayUsage extends UsageCounts {
  /** A UTC day, YYYY-MM-DD. */
  day: string;
}

export interface UsageReport {
  start: string;
  end: string;
  totals: UsageCounts;
  by_deployment: DeploymentUsage[];
  by_api_key: ApiKeyUsage[];
  by_day: DayUsage[];
}
