import { BrowserLLMError, errorFor } from "./errors.js";
import type { GenerateRequest, GenerateResponse, WSResponse } from "./types.js";

type Listener = (message: WSResponse) => void;

/** One WebSocket: several generations at once by id, abort, metric/log subscriptions. */
export class WSSession {
  private readonly listeners = new Map<string, Listener>();

  private constructor(private readonly socket: WebSocket) {
    socket.addEventListener("message", (event: MessageEvent) => {
      const message = JSON.parse(String(event.data)) as WSResponse;
      if (message.id !== null) this.listeners.get(message.id)?.(message);
    });
  }

  static open(url: string): Promise<WSSession> {
    const Ctor = (globalThis as { WebSocket?: typeof WebSocket }).WebSocket;
    if (!Ctor) {
      return Promise.reject(
        new BrowserLLMError("UNSUPPORTED", "no global WebSocket (Node 20: run with --experimental-websocket)"),
      );
    }
    const socket = new Ctor(url);
    return new Promise((resolve, reject) => {
      socket.addEventListener("open", () => resolve(new WSSession(socket)), { once: true });
      socket.addEventListener("error", () => reject(new BrowserLLMError("CONNECTION_ERROR", "WebSocket failed")), {
        once: true,
      });
    });
  }

  /** Streams tokens to onToken and resolves with the final response (rejects on error/abort). */
  generate(id: string, payload: GenerateRequest, onToken: (token: string) => void): Promise<GenerateResponse> {
    return new Promise((resolve, reject) => {
      this.listeners.set(id, (message) => {
        if (message.type === "token") onToken(message.data.token);
        else if (message.type === "done" || message.type === "error") {
          this.listeners.delete(id);
          // done and error carry the same data as the SSE stream's events.
          if (message.type === "done") resolve(message.data.completion as GenerateResponse);
          else reject(errorFor(message.data.code, message.data.error, { details: message.data.details }));
        }
      });
      this.socket.send(JSON.stringify({ type: "generate", id, payload }));
    });
  }

  abort(id: string): void {
    this.socket.send(JSON.stringify({ type: "abort", id }));
  }

  subscribe(id: string, events: Array<"metric" | "log">, onEvent: Listener, level?: string): void {
    this.listeners.set(id, onEvent);
    this.socket.send(JSON.stringify({ type: "subscribe", id, payload: { events, level } }));
  }

  unsubscribe(id: string): void {
    this.listeners.delete(id);
    this.socket.send(JSON.stringify({ type: "unsubscribe", id }));
  }

  close(): void {
    this.socket.close();
  }
}
