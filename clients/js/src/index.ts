export { BrowserLLMClient } from "./client.js";
export type { ClientOptions, LoadModelOptions } from "./client.js";
export {
  BrowserLLMError,
  ModelNotLoadedError,
  NotFoundError,
  OverloadedError,
  RateLimitError,
  UnauthorizedError,
  ValidationError,
} from "./errors.js";
export { SSEParser } from "./sse.js";
export { WSSession } from "./ws.js";
export type * from "./types.js";
