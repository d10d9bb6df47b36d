import { BrowserLLMError, errorFor } from "./errors.js";
import { SSEParser } from "./sse.js";
import type {
  GenerateRequest,
  GenerateResponse,
  LoadModelResponse,
  ModelsResponse,
  StatusResponse,
} from "./types.js";
import { WSSession } from "./ws.js";

export interface ClientOptions {
  apiKey?: string;
  /** Retries for RATE_LIMIT / OVERLOADED answers, after exponential backoff >= Retry-After. */
  maxRetries?: number;
  fetch?: typeof fetch;
}

interface Envelope<T> {
  success: boolean;
  data?: T;
  error?: { code: string; message: string; details?: unknown };
  metadata?: { requestId: string };
}

export interface LoadModelOptions {
  /** Poll until the load has finished (default true). */
  wait?: boolean;
  /** Called with the load's progress, 0-1, at every poll and with 1 at the end. */
  onProgress?: (progress: number) => void;
  /** Time between polls in milliseconds (default 500). */
  pollMs?: number;
  signal?: AbortSignal;
}

const RETRYABLE = new Set(["RATE_LIMIT", "OVERLOADED"]);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export class BrowserLLMClient {
  private readonly baseURL: string;
  private readonly options: ClientOptions;
  /** The final GenerateResponse of the last finished generateStream. */
  lastCompletion: GenerateResponse | null = null;

  constructor(baseURL = "http://127.0.0.1:3000/api/v1", options: ClientOptions = {}) {
    this.baseURL = baseURL.replace(/\/+$/, "");
    this.options = options;
  }

  private headers(json: boolean): Record<string, string> {
    const headers: Record<string, string> = {};
    if (json) headers["Content-Type"] = "application/json";
    if (this.options.apiKey) headers["Authorization"] = `Bearer ${this.options.apiKey}`;
    return headers;
  }

  private async send(path: string, init: RequestInit & { json?: unknown }): Promise<Response> {
    const doFetch = this.options.fetch ?? fetch;
    const { json, ...rest } = init;
    try {
      return await doFetch(`${this.baseURL}${path}`, {
        ...rest,
        headers: this.headers(json !== undefined),
        body: json === undefined ? undefined : JSON.stringify(json),
      });
    } catch (err) {
      if ((err as Error).name === "AbortError") throw err;
      throw new BrowserLLMError("CONNECTION_ERROR", String((err as Error).message ?? err));
    }
  }

  private static async errorOf(response: Response): Promise<BrowserLLMError> {
    let body: Envelope<unknown> | undefined;
    try {
      body = (await response.json()) as Envelope<unknown>;
    } catch {
      body = undefined;
    }
    const retry = response.headers.get("Retry-After");
    return errorFor(body?.error?.code ?? "INTERNAL_ERROR", body?.error?.message ?? `HTTP ${response.status}`, {
      status: response.status,
      details: body?.error?.details,
      requestId: body?.metadata?.requestId ?? response.headers.get("X-Request-ID") ?? undefined,
      retryAfter: retry !== null && !Number.isNaN(Number(retry)) ? Number(retry) : undefined,
    });
  }

  private async call<T>(path: string, init: RequestInit & { json?: unknown } = {}): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      const response = await this.send(path, init);
      if (response.ok) {
        const body = (await response.json()) as Envelope<T>;
        if (body.success) return body.data as T;
      }
      const error = await BrowserLLMClient.errorOf(response);
      if (!RETRYABLE.has(error.code) || attempt >= (this.options.maxRetries ?? 0)) throw error;
      await sleep(Math.max(2 ** attempt, error.retryAfter ?? 0) * 1000);
    }
  }

  generate(params: GenerateRequest, signal?: AbortSignal): Promise<GenerateResponse> {
    return this.call("/generate", { method: "POST", json: { ...params, stream: false }, signal });
  }

  /** Yields tokens as they stream; abort with the signal. The final response is in lastCompletion. */
  async *generateStream(params: GenerateRequest, signal?: AbortSignal): AsyncGenerator<string> {
    this.lastCompletion = null;
    const response = await this.send("/generate", {
      method: "POST",
      json: { ...params, stream: true },
      signal,
    });
    if (!response.ok || response.body === null) throw await BrowserLLMClient.errorOf(response);
    const parser = new SSEParser();
    const reader = response.body.getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        for (const event of parser.feed(value) as Array<{ type: string; data: any }>) {
          // Tokens already read with an aborted one are not handed out after the abort.
          signal?.throwIfAborted();
          if (event.type === "token") yield event.data.token as string;
          else if (event.type === "done") this.lastCompletion = event.data.completion;
          else if (event.type === "error")
            throw errorFor(event.data.code ?? "INFERENCE_ERROR", event.data.error, { details: event.data.details });
        }
      }
    } finally {
      reader.releaseLock();
    }
  }

  getModels(): Promise<ModelsResponse> {
    return this.call("/models");
  }

  getModel(modelId: string): Promise<Record<string, unknown>> {
    return this.call(`/models/${encodeURIComponent(modelId)}`);
  }

  /**
   * POST /models/{id}/load, starting again after a failed load (`?retry=true`). The
   * server answers at once; with `wait` (the default) this polls the same call until the
   * load has ended, reporting progress 0-1, and throws the load's error if it failed
   * (status "error"), as the Python SDK's load_model does. Without `wait` it returns the
   * first answer as it is. An abort signal stops the waiting (not the load).
   */
  async loadModel(modelId: string, options: LoadModelOptions = {}): Promise<LoadModelResponse> {
    const { wait = true, onProgress, pollMs = 500, signal } = options;
    const path = `/models/${encodeURIComponent(modelId)}/load`;
    let result = await this.call<LoadModelResponse>(`${path}?retry=true`, { method: "POST", signal });
    while (wait && result.status === "loading") {
      onProgress?.(result.progress ?? 0);
      await sleep(pollMs);
      signal?.throwIfAborted();
      result = await this.call<LoadModelResponse>(path, { method: "POST", signal });
    }
    if (wait && result.status === "error") {
      const error = result.error ?? { code: "MODEL_LOAD_FAILED", message: "the model failed to load" };
      throw errorFor(error.code, error.message, { details: error.details });
    }
    if (result.status === "loaded") onProgress?.(1);
    return result;
  }

  getStatus(): Promise<StatusResponse> {
    return this.call("/status");
  }

  /** A WebSocket session (generate, abort, subscribe); needs a global WebSocket. */
  openSession(): Promise<WSSession> {
    const url = this.baseURL.replace(/^http/, "ws") + "/ws";
    const withKey = this.options.apiKey ? `${url}?api_key=${encodeURIComponent(this.options.apiKey)}` : url;
    return WSSession.open(withKey);
  }
}
