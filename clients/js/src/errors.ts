/** Errors carry the API's error `code` (MODEL_NOT_LOADED, RATE_LIMIT, ...). */
export class BrowserLLMError extends Error {
  readonly code: string;
  readonly status?: number;
  readonly details?: unknown;
  readonly requestId?: string;
  readonly retryAfter?: number;

  constructor(
    code: string,
    message: string,
    init: { status?: number; details?: unknown; requestId?: string; retryAfter?: number } = {},
  ) {
    super(`${code}: ${message}`);
    this.name = "BrowserLLMError";
    this.code = code;
    this.status = init.status;
    this.details = init.details;
    this.requestId = init.requestId;
    this.retryAfter = init.retryAfter;
  }
}

export class ValidationError extends BrowserLLMError {}
export class ModelNotLoadedError extends BrowserLLMError {}
export class RateLimitError extends BrowserLLMError {}
export class OverloadedError extends BrowserLLMError {}
export class UnauthorizedError extends BrowserLLMError {}
export class NotFoundError extends BrowserLLMError {}
export class ModelLoadFailedError extends BrowserLLMError {}
export class InferenceError extends BrowserLLMError {}
export class StorageError extends BrowserLLMError {}

const BY_CODE: Record<string, typeof BrowserLLMError> = {
  VALIDATION_ERROR: ValidationError,
  PAYLOAD_TOO_LARGE: ValidationError,
  MODEL_NOT_LOADED: ModelNotLoadedError,
  RATE_LIMIT: RateLimitError,
  OVERLOADED: OverloadedError,
  UNAUTHORIZED: UnauthorizedError,
  FORBIDDEN: UnauthorizedError,
  NOT_FOUND: NotFoundError,
  MODEL_LOAD_FAILED: ModelLoadFailedError,
  INFERENCE_ERROR: InferenceError,
  STORAGE_ERROR: StorageError,
};

export function errorFor(
  code: string,
  message: string,
  init: { status?: number; details?: unknown; requestId?: string; retryAfter?: number } = {},
): BrowserLLMError {
  const Cls = BY_CODE[code] ?? BrowserLLMError;
  return new Cls(code, message, init);
}
