// Talking to the server: the envelope, the API key, errors in plain words, SSE over fetch.

export const API = "/api/v1";
const KEY_STORE = "browser-llm.api-key";

export class ApiError extends Error {
  constructor(code, message, status, details) {
    super(message);
    this.code = code;
    this.status = status;
    this.details = details || {};
  }
}

// What each error code means for the person at the page.
const PLAIN = {
  MODEL_NOT_LOADED: "No model is loaded. Open Models and load one.",
  MODEL_LOAD_FAILED: "The model could not be loaded.",
  OVERLOADED: "The server is busy with other requests. Try again in a moment.",
  RATE_LIMIT: "Too many requests in a minute. Wait a little and try again.",
  STORAGE_ERROR: "Not enough storage, or the model file could not be written or read.",
  INFERENCE_ERROR: "The model failed while generating.",
  UNAUTHORIZED: "The API key was not accepted.",
  FORBIDDEN: "The server refused this request.",
  PAYLOAD_TOO_LARGE: "The request is too large.",
  NOT_FOUND: "Not found.",
  NETWORK: "The server cannot be reached. Is it running?",
  INTERNAL_ERROR: "The server hit an unexpected error.",
};

export function plainError(err) {
  if (!(err instanceof ApiError)) return String((err && err.message) || err);
  const d = err.details || {};
  if (err.code === "VALIDATION_ERROR" && d.prompt_tokens && d.context_length) {
    return `The conversation is too long for the model: ${d.prompt_tokens} tokens, ` +
      `the context holds ${d.context_length}. Start a new chat or shorten the prompt.`;
  }
  if (err.code === "VALIDATION_ERROR") return `Please check the settings: ${err.message}`;
  if (err.code === "MODEL_LOAD_FAILED" && d.reason === "not_downloaded") {
    return "The model file is not on disk yet: download it first.";
  }
  const base = PLAIN[err.code];
  if (!base) return err.message || err.code;
  return err.message && err.code !== "NETWORK" ? `${base} (${err.message})` : base;
}

export function apiKey() {
  return sessionStorage.getItem(KEY_STORE) || "";
}

// The page asks for the key once, however many requests were refused at the same time.
let asking = null;
let askForKey = async () => false;

export function setKeyPrompt(fn) {
  askForKey = fn;
}

async function keyFromUser(rejected) {
  if (!asking) {
    asking = askForKey(rejected).then((key) => {
      asking = null;
      if (key) sessionStorage.setItem(KEY_STORE, key);
      return Boolean(key);
    });
  }
  return asking;
}

function headers(extra) {
  const h = { ...extra };
  const key = apiKey();
  if (key) h.Authorization = `Bearer ${key}`;
  return h;
}

async function errorFrom(resp) {
  let body = null;
  try {
    body = await resp.json();
  } catch {
    // not JSON: fall through with the status alone
  }
  const e = body && body.error;
  if (e) return new ApiError(e.code, e.message, resp.status, e.details);
  return new ApiError("INTERNAL_ERROR", `HTTP ${resp.status}`, resp.status);
}

// fetch with the key; on 401 asks for the key and tries again.
export async function rawFetch(path, init = {}) {
  for (;;) {
    let resp;
    try {
      resp = await fetch(API + path, { ...init, headers: headers(init.headers) });
    } catch (err) {
      if (err && err.name === "AbortError") throw err;
      throw new ApiError("NETWORK", "", 0);
    }
    if (resp.status !== 401) return resp;
    const hadKey = Boolean(apiKey());
    if (!(await keyFromUser(hadKey))) throw await errorFrom(resp);
  }
}

// A JSON call: returns the envelope's data or throws ApiError.
export async function call(path, init = {}) {
  const resp = await rawFetch(path, init);
  if (!resp.ok) throw await errorFrom(resp);
  const body = await resp.json();
  if (!body.success) throw new ApiError(body.error.code, body.error.message, resp.status);
  return body.data;
}

export function postJSON(path, payload, init = {}) {
  return call(path, {
    ...init,
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(payload),
  });
}

// Splits a Server-Sent Events byte stream into the JSON of each event's data lines.
export async function* sseEvents(body) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, "\n");
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        const data = block
          .split("\n")
          .filter((line) => line.startsWith("data:"))
          .map((line) => line.slice(5).replace(/^ /, ""))
          .join("\n");
        if (data) yield JSON.parse(data);
      }
    }
  } finally {
    reader.releaseLock();
  }
}

// POST /generate with stream=true; calls onToken for each piece, returns the completion.
export async function streamGenerate(payload, { signal, onToken }) {
  const resp = await rawFetch("/generate", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ ...payload, stream: true }),
    signal,
  });
  if (!resp.ok) throw await errorFrom(resp);
  for await (const event of sseEvents(resp.body)) {
    if (event.type === "token") onToken(event.data.token);
    else if (event.type === "done") return event.data.completion;
    else if (event.type === "error") {
      throw new ApiError(event.data.code || "INFERENCE_ERROR", event.data.error, 200);
    }
  }
  throw new ApiError("NETWORK", "the stream ended early", 0);
}

export function wsURL() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const key = apiKey();
  // Browsers cannot set headers on a WebSocket: the server reads ?api_key= instead.
  const query = key ? `?api_key=${encodeURIComponent(key)}` : "";
  return `${scheme}//${location.host}${API}/ws${query}`;
}

// Asks for the key when the server wants one (used when a WebSocket is refused).
export async function ensureAuthorized() {
  await call("/status");
}
