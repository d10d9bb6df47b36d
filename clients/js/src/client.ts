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
          if (event.type === "token") yield event.data.token as string;
          else if (event.type === "done") this.lastCompletion = event.data.completion;
          else if (event.type === "error") throw errorFor(event.data.code ?? "INFERENCE_ERROR", event.data.error);
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

  loadModel(modelId: string): Promise<LoadModelResponse> {
    return this.call(`/models/${encodeURIComponent(modelId)}/load`, { method: "POST" });
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
