/** The API's shapes, as docs/api.md describes them (extensions marked). */
export interface GenerateRequest {
  prompt: string;
  max_tokens?: number;
  temperature?: number;
  top_p?: number;
  top_k?: number;
  frequency_penalty?: number;
  presence_penalty?: number;
  stop?: string[] | string;
  json_mode?: boolean;
  json_schema?: Record<string, unknown>;
  seed?: number; // extension
  raw?: boolean; // extension
  ignore_eos?: boolean; // extension
}

export interface GenerateResponse {
  text: string;
  tokens: number;
  finish_reason: "stop" | "length" | "error";
  usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
  performance: { tokens_per_second: number; latency_ms: number; total_time_ms: number };
  model: string;
  json?: { complete: boolean; valid: boolean; value?: unknown; errors: string[] };
}

export interface ModelSummary {
  id: string;
  name: string;
  size: string;
  vram_required: string;
  downloaded: boolean;
  speed_tier: "fast" | "medium" | "slow";
  quality_tier: "excellent" | "good" | "basic";
  capabilities: string[];
  loaded: boolean;
}

export interface ModelsResponse {
  models: ModelSummary[];
}

export interface LoadModelResponse {
  model_id: string;
  status: "loaded" | "loading" | "error";
  progress?: number;
  estimated_time_ms?: number;
}

export interface StatusResponse {
  status: "ready" | "loading" | "error" | "idle";
  model: { id: string; loaded: boolean } | null;
  system: Record<string, number | boolean>;
  performance: Record<string, number>;
  health: Record<string, number>;
  engine: Record<string, number | null>;
}

export interface WSResponse {
  type: "token" | "done" | "error" | "metric" | "log";
  id: string | null;
  data: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}
