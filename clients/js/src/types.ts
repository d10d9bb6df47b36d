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
  /** generate() always sends false and generateStream() true; set for raw fetch use. */
  stream?: boolean;
  json_mode?: boolean;
  json_schema?: Record<string, unknown>;
  seed?: number; // extension
  raw?: boolean; // extension
  ignore_eos?: boolean; // extension
  engine?: "native" | "browser"; // extension
  history?: { role: "system" | "user" | "assistant"; content: string }[]; // extension
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

export interface ErrorBody {
  code: string;
  message: string;
  details?: unknown;
}

export interface LoadModelResponse {
  model_id: string;
  /** "unloaded" answers POST /models/{id}/unload (extension). */
  status: "loaded" | "loading" | "error" | "unloaded";
  progress?: number;
  estimated_time_ms?: number;
  phase?: string; // extension
  error?: ErrorBody; // extension: why a load failed, with status "error"
}

export interface StatusResponse {
  status: "ready" | "loading" | "error" | "idle";
  model: { id: string; loaded: boolean } | null;
  system: {
    webgpu_available: boolean;
    ram_gb: number;
    /** null where no source exists (see docs/api.md). */
    gpu_vram_gb: number | null;
    storage_quota_gb: number;
    storage_used_gb: number;
    [extension: string]: unknown;
  };
  performance: {
    avg_tokens_per_second: number;
    avg_latency_ms: number;
    requests_total: number;
    requests_success: number;
    requests_error: number;
    [extension: string]: unknown;
  };
  health: {
    webgpu_context_losses: number;
    memory_errors: number;
    stability_score: number;
    [extension: string]: unknown;
  };
  engine: Record<string, unknown>; // extension: see docs/api.md
  [extension: string]: unknown;
}

export interface WSResponse {
  type: "token" | "done" | "error" | "metric" | "log";
  id: string; // "" for errors about a message whose own id could not be read
  data: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}
