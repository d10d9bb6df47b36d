// Browser LLM's browser engine: this tab attaches to the server over a WebSocket and
// runs the generations the server relays, on wllama (llama.cpp in WebAssembly, with
// WebGPU where the adapter allows it). Protocol: docs/browser-engine.md.
import { WllamaAbortError } from '/engine/vendor/index.js';
import { complete, createRuntime, modelBlob } from '/engine/app/runtime.js';
import { DeviceWatch, probeAdapter } from '/engine/app/webgpu.js';

const RETRY_MS = 1000;
const READINGS_EVERY_MS = 5000;
// After this many losses of wllama's WebGPU device, `auto` keeps this tab on WebAssembly.
const MAX_DEVICE_LOSSES = 2;
const GB = 1024 ** 3;
const apiKey = new URLSearchParams(location.hash.slice(1)).get('key');

const state = {
  ws: null,
  replaced: false,
  modelId: null,
  current: null, // { id, controller, lose }
  abortedEarly: new Set(), // ids aborted before their turn came
  chain: Promise.resolve(), // load and generate run one at a time, in arrival order
  contextLosses: 0,
  memoryErrors: 0,
  gpu: { usable: false, adapter: null, reason: 'not probed yet' },
  backend: null, // what the loaded model runs on: 'webgpu' | 'wasm'
  webgpuOff: null, // why `auto` no longer tries WebGPU in this tab
  device: null, // wllama's WebGPU device, as its worker reported it
  offload: null, // {offloaded, total} from llama.cpp's load log
  persisted: null,
  requests: 0,
  lastOptions: null,
};
const watch = new DeviceWatch(onDeviceEvent);
const wllama = await createRuntime(watch, (offload) => { state.offload = offload; });

const $ = (id) => document.getElementById(id);
const show = (id, text) => { $(id).textContent = text; };

function send(message) {
  if (state.ws && state.ws.readyState === WebSocket.OPEN) state.ws.send(JSON.stringify(message));
}

function enqueue(task) {
  state.chain = state.chain.then(task, task);
  return state.chain;
}

// ---- readings: GPU, storage, errors ----------------------------------------------
function onDeviceEvent(event) {
  if (event.type === 'device') {
    state.device = { vendor: event.vendor, architecture: event.architecture };
  } else if (event.type === 'lost') {
    if (event.reason !== 'destroyed' || event.injected) onDeviceLost(event);
  } else if (event.type === 'gpu_error' && /OutOfMemory/.test(event.kind)) {
    state.memoryErrors += 1;
  }
}

async function cachedModels() {
  try {
    const entries = await wllama.cacheManager.list();
    return entries
      .filter((e) => e.metadata && e.metadata.originalSize === e.size)
      .map((e) => (e.metadata.originalURL || '').match(/\/engine\/models\/([^/]+)\/model\.gguf$/))
      .filter(Boolean)
      .map((m) => decodeURIComponent(m[1]));
  } catch {
    return [];
  }
}

async function readings() {
  let quota = 0;
  let usage = 0;
  if (navigator.storage && navigator.storage.estimate) {
    const estimate = await navigator.storage.estimate();
    quota = estimate.quota || 0;
    usage = estimate.usage || 0;
  }
  show('storage', `${(usage / GB).toFixed(3)} GB used of ${(quota / GB).toFixed(3)} GB` +
    (state.persisted === null ? '' : state.persisted ? ', persistent' : ', may be evicted'));
  const loaded = wllama.isModelLoaded();
  return {
    webgpu_available: state.gpu.usable && state.webgpuOff === null,
    webgpu_unavailable_reason: state.gpu.usable ? state.webgpuOff : state.gpu.reason,
    adapter: state.gpu.adapter,
    backend: loaded ? state.backend : null,
    gpu_layers_offloaded: loaded ? offloadedLayers() : null,
    gpu_vram_gb: null, // WebGPU has no standard memory figure
    storage_quota_gb: quota / GB,
    storage_used_gb: usage / GB,
    storage_persisted: state.persisted,
    webgpu_context_losses: state.contextLosses,
    memory_errors: state.memoryErrors,
    threads: loaded ? wllama.getNumThreads() : navigator.hardwareConcurrency || 1,
    multi_thread: loaded ? wllama.isMultithread() : self.crossOriginIsolated === true,
    cached_models: await cachedModels(),
  };
}

// llama.cpp logs "offloaded N/M layers to GPU" only when it has a GPU device.
function offloadedLayers() {
  if (state.offload) return state.offload.offloaded;
  return state.device ? null : 0;
}

async function sendReadings() {
  send({ type: 'readings', data: await readings() });
}

function classify(err) {
  const message = String((err && err.message) || err || 'unknown error').slice(0, 500);
  if (/out of memory|\bOOM\b|allocat|Array buffer|memory access out of bounds/i.test(message)) {
    state.memoryErrors += 1;
    return { code: 'INFERENCE_ERROR', message: `memory: ${message}` };
  }
  if (state.backend === 'webgpu' && /webgpu|gpu|device (was )?lost/i.test(message)) {
    return { code: 'WEBGPU_ERROR', message };
  }
  if (/exceed.*context|context size|too long/i.test(message)) {
    return { code: 'VALIDATION_ERROR', message };
  }
  return { code: 'INFERENCE_ERROR', message };
}

// ---- model loading ---------------------------------------------------------------
class TabError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

// The backend to ask wllama for, given BROWSER_LLM_BROWSER_BACKEND (auto | webgpu | wasm).
function chooseBackend(setting) {
  if (setting === 'wasm') return 'wasm';
  if (setting === 'webgpu') {
    if (state.gpu.usable) return 'webgpu';
    throw new TabError('WEBGPU_ERROR', `WebGPU is required (BROWSER_LLM_BROWSER_BACKEND=webgpu) but this tab cannot use it: ${state.gpu.reason}`);
  }
  return state.gpu.usable && state.webgpuOff === null ? 'webgpu' : 'wasm';
}

// Starts wllama on `backend`; returns the backend llama.cpp actually used.
async function startModel(blob, nCtx, backend, forced) {
  if (wllama.isModelLoaded()) await wllama.exit();
  state.device = null;
  state.offload = null;
  await wllama.loadModel([blob], {
    n_ctx: nCtx,
    n_threads: navigator.hardwareConcurrency || 1,
    n_gpu_layers: backend === 'webgpu' ? 999 : 0,
  });
  // The load log's offload line is ordered with the load's answer (the hook's is not).
  const used = state.offload && state.offload.offloaded > 0 ? 'webgpu' : 'wasm';
  if (backend === 'webgpu' && used !== 'webgpu') {
    const why = 'llama.cpp offloaded no layer to WebGPU';
    if (forced) {
      await wllama.exit();
      throw new TabError('WEBGPU_ERROR', `${why} (BROWSER_LLM_BROWSER_BACKEND=webgpu)`);
    }
    console.warn(`${why}; running on WebAssembly`);
  }
  return used;
}

async function load(message) {
  const { model_id: modelId, n_ctx: nCtx, backend: setting = 'auto' } = message.data;
  show('model', `${modelId} (loading)`);
  try {
    const wanted = chooseBackend(setting);
    const { blob, fromCache } = await modelBlob(wllama, message.data, apiKey, ({ loaded, total }) => {
      $('progress').value = total ? loaded / total : 0;
      send({ type: 'load_progress', id: message.id, data: { model_id: modelId, loaded, total } });
    });
    $('progress').value = 1;
    const started = performance.now();
    state.backend = await startModel(blob, nCtx, wanted, setting === 'webgpu');
    const info = wllama.getLoadedContextInfo();
    state.modelId = modelId;
    const layers = offloadedLayers();
    show('model', modelId);
    show('backend', state.backend === 'webgpu'
      ? `WebGPU (${layers}/${info.n_layer} layers offloaded), ${wllama.getNumThreads()} thread(s)`
      : `WebAssembly, ${wllama.getNumThreads()} thread(s)${state.gpu.usable && state.webgpuOff === null ? '' : ` (no WebGPU: ${state.webgpuOff || state.gpu.reason})`}`);
    send({
      type: 'loaded',
      id: message.id,
      data: {
        model_id: modelId,
        from_cache: fromCache,
        load_time_s: (performance.now() - started) / 1000,
        context_length: info.n_ctx,
        train_context_length: info.n_ctx_train,
        n_vocab: info.n_vocab,
        backend: state.backend,
        gpu_layers_offloaded: layers,
        n_layer: info.n_layer,
      },
    });
  } catch (err) {
    console.error('model load failed', err);
    const error = err instanceof TabError ? { code: err.code, message: err.message } : classify(err);
    show('model', `${modelId} (failed: ${error.message})`);
    const code = error.code === 'INFERENCE_ERROR' ? 'MODEL_LOAD_FAILED' : error.code;
    send({ type: 'load_failed', id: message.id, data: { model_id: modelId, code, message: error.message } });
  }
  sendReadings();
}

// wllama's WebGPU device is gone (the hook saw its `lost` promise settle): the running
// request ends with WEBGPU_ERROR, wllama's worker is dropped, and the server reloads the
// model (on a new device, or on WebAssembly once `auto` has seen MAX_DEVICE_LOSSES).
function onDeviceLost(event) {
  state.contextLosses += 1;
  const what = `the WebGPU device running the model was lost (${event.reason}${event.message ? `: ${event.message}` : ''})`;
  console.warn(what);
  if (state.contextLosses >= MAX_DEVICE_LOSSES && state.webgpuOff === null) {
    state.webgpuOff = `WebGPU device lost ${state.contextLosses} times in this tab; reload the page to try WebGPU again`;
    console.warn(`falling back to WebAssembly: ${state.webgpuOff}`);
  }
  const modelId = state.modelId;
  state.modelId = null;
  state.backend = null;
  const running = state.current;
  // The server hears of the loss before the request's error, so it dispatches nothing
  // to this tab until the model is back.
  send({ type: 'device_lost', data: { reason: event.reason, message: what, model_id: modelId, fallback: state.webgpuOff } });
  if (running) running.lose(new TabError('WEBGPU_ERROR', what));
  wllama.exit().catch(() => {});
  show('model', `${modelId || 'none'} (WebGPU device lost; reloading)`);
  sendReadings();
}

async function unload() {
  state.modelId = null;
  if (wllama.isModelLoaded()) await wllama.exit();
  show('model', 'none');
}

// ---- generation --------------------------------------------------------------------
async function generate(message) {
  const id = message.id;
  if (state.abortedEarly.delete(id)) {
    send({ type: 'error', id, code: 'CANCELLED', message: 'aborted' });
    return;
  }
  const controller = new AbortController();
  // A lost device may leave wllama's promise pending for ever: the loss settles the request.
  let lose;
  const lost = new Promise((_, reject) => { lose = reject; });
  lost.catch(() => {}); // settled after the race was won: nothing to report
  state.current = { id, controller, lose };
  state.lastOptions = message.data; // bench/browser_engine.py replays it directly
  state.requests += 1;
  show('requests', String(state.requests));
  try {
    const result = await Promise.race([lost, complete(wllama, message.data, controller, (event) => {
      if (state.current === null || state.current.id !== id) return; // lost meanwhile
      if (event.type === 'token') send({ type: 'token', id, text: event.text });
      else send({ type: 'admitted', id, prompt_tokens: event.prompt_tokens });
    })]);
    const usage = result.usage || {};
    send({
      type: 'done',
      id,
      data: {
        finish_reason: result.finish_reason,
        prompt_tokens: usage.prompt_tokens,
        completion_tokens: usage.completion_tokens,
      },
    });
  } catch (err) {
    if (err instanceof TabError) {
      send({ type: 'error', id, code: err.code, message: err.message });
    } else if (controller.signal.aborted || err instanceof WllamaAbortError || (err && err.name === 'AbortError')) {
      send({ type: 'error', id, code: 'CANCELLED', message: 'aborted' });
    } else {
      console.error('generation failed', err);
      send({ type: 'error', id, ...classify(err) });
      sendReadings();
    }
  } finally {
    state.current = null;
  }
}

function abort(message) {
  if (state.current && state.current.id === message.id) state.current.controller.abort();
  else state.abortedEarly.add(message.id);
}

// ---- the connection ------------------------------------------------------------------
function onMessage(event) {
  let message;
  try {
    message = JSON.parse(event.data);
  } catch {
    return;
  }
  switch (message.type) {
    case 'attached':
      show('connection', `attached (tab ${message.data.tab_id})`);
      break;
    case 'load':
      enqueue(() => load(message));
      break;
    case 'unload':
      enqueue(unload);
      break;
    case 'generate':
      enqueue(() => generate(message));
      break;
    case 'abort':
      abort(message);
      break;
    case 'ping':
      send({ type: 'pong' }); // the server's heartbeat: this tab still answers
      break;
    case 'timed_out':
      show('connection', 'the server stopped waiting for this tab; reconnecting');
      break;
    case 'replaced':
      state.replaced = true;
      show('connection', 'replaced by a newer tab; this one is idle (reload it to take over)');
      break;
    default:
      break;
  }
}

async function connect() {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const query = apiKey ? `?api_key=${encodeURIComponent(apiKey)}` : '';
  const ws = new WebSocket(`${scheme}//${location.host}/api/v1/engine/attach${query}`);
  state.ws = ws;
  show('connection', 'connecting');
  ws.onopen = async () => {
    ws.send(JSON.stringify({ type: 'hello', data: await readings() }));
  };
  ws.onmessage = onMessage;
  ws.onclose = () => {
    if (state.current) state.current.controller.abort(); // the server already failed it
    if (state.replaced) return;
    show('connection', 'disconnected; retrying');
    setTimeout(connect, RETRY_MS);
  };
}

// For bench/browser_engine.py: the same completion, called directly in this page.
window.browserLLM = {
  state,
  direct(options) {
    return enqueue(async () => {
      const controller = new AbortController();
      let first = null;
      let last = null;
      let pieces = 0;
      const started = performance.now();
      const result = await complete(wllama, options, controller, (event) => {
        if (event.type !== 'token') return;
        const now = performance.now();
        if (first === null) first = now;
        last = now;
        pieces += 1;
      });
      return {
        ...result,
        pieces,
        first_token_ms: (first ?? performance.now()) - started,
        decode_s: ((last ?? 0) - (first ?? 0)) / 1000,
        total_ms: performance.now() - started,
      };
    });
  },
};

// Tests: a loss of wllama's device without a device (on adapters llama.cpp cannot use,
// wllama creates none); the same handler as a real loss reported by the hook.
window.browserLLM.simulateDeviceLoss = () => onDeviceLost({ reason: 'unknown', message: 'simulated by a test', injected: true });
window.browserLLM.watch = watch;

state.gpu = await probeAdapter();
if (navigator.storage && navigator.storage.persist) {
  // Ask that the model cache is not evicted under storage pressure; the browser decides.
  state.persisted = await navigator.storage.persist().catch(() => false);
}
show('backend', state.gpu.usable ? 'WebGPU available' : `WebAssembly (${state.gpu.reason})`);
connect();
setInterval(() => { if (state.ws && state.ws.readyState === WebSocket.OPEN) sendReadings(); }, READINGS_EVERY_MS);
