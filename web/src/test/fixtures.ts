import type { Dataset, User } from "../api/types";

export const dataset = (over: Partial<Dataset> = {}): Dataset => ({
  id: "ds1",
  name: "support.jsonl",
  file_name: "support.jsonl",
  size: 2048,
  file_type: "jsonl",
  state: "ready",
  detected_format: "chat",
  detection_reason: "every row has a 'messages' list",
  format: "chat",
  format_confirmed: false,
  columns: ["messages"],
  rows: 3,
  valid_rows: 3,
  problem_count: 0,
  problems: [],
  token_stats: null,
  token_stats_note: null,
  base_model: "smollm2-135m-instruct",
  sequence_len: 2048,
  eval_fraction: 0.1,
  train_rows: 3,
  eval_rows: 0,
  failure_code: null,
  failure_reason: null,
  created_at: null,
  ...over,
});

export const user = (id: string, email: string, over: Partial<User> = {}): User => ({
  id,
  email,
  role: "member",
  disabled: false,
  created_at: "2024-05-01T10:00:00Z",
  ...over,
});
