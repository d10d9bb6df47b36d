export { BrowserLLMClient } from "./client.js";
export type { ClientOptions, LoadModelOptions } from "./client.js";
export {
  BrowserLLMError,
  InferenceError,
  ModelLoadFailedError,
  ModelNotLoadedError,
  NotFoundError,
  OverloadedError,
  RateLimitError,
  StorageError,
  UnauthorizedError,
  ValidationError,
} from "./errors.js";
export { SSEParser } from "./sse.js";
export { WSSession } from "./ws.js";
export type * from "./types.js";
