// Browser LLM's browser engine: this tab attaches to the server over a WebSocket and
// runs the generations the server relays, on wllama (llama.cpp in WebAssembly, with
// WebGPU where the browser has a GPU). Protocol: docs/browser-engine.md.
import { Wllama, WllamaAbortError } from '/engine/vendor/index.js';

const WASM_URL = new URL('/engine/vendor/wasm/wllama.wasm', location.href).href;
const RETRY_MS = 1000;
const READINGS_EVERY_MS = 5000;
const GB = 1024 ** 3;
const apiKey = new URLSearchParams(location.hash.slice(1)).get('key');

const state = {
  ws: null,
  replaced: false,
  modelId: null,
  current: null, // { id, controller }
  abortedEarly: new Set(), // ids aborted before their turn came
  chain: Promise.resolve(), // load and generate run one at a time, in arrival order
  contextLosses: 0,
  memoryErrors: 0,
  gpu: { available: false, vramGb: 0 },
  requests: 0,
  lastOptions: null,
};
const wllama = new Wllama({ default: WASM_URL }, { suppressNativeLog: true });
wllama.setCompat(null); // no CDN fallbacks: everything comes from this server

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
async function probeGpu() {
  if (!navigator.gpu) return;
  try {
    const adapter = await navigator.gpu.requestAdapter();
    if (!adapter) return;
    state.gpu.available = true;
    // WebGPU does not report VRAM; some builds expose memory heaps on the adapter info.
    const heaps = adapter.info && adapter.info.memoryHeaps;
    if (heaps) {
      const local = [...heaps].filter((h) => h.properties & 1).reduce((s, h) => s + h.size, 0);
      state.gpu.vramGb = local / GB;
    }
    const device = await adapter.requestDevice();
    device.lost.then((info) => {
      if (info.reason !== 'destroyed') state.contextLosses += 1;
      sendReadings();
    });
    device.addEventListener('uncapturederror', (event) => {
      if (event.error && event.error.constructor.name === 'GPUOutOfMemoryError') {
        state.memoryErrors += 1;
      }
    });
  } catch (err) {
    console.warn('WebGPU probe failed', err);
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
  show('storage', `${(usage / GB).toFixed(3)} GB used of ${(quota / GB).toFixed(3)} GB`);
  const loaded = wllama.isModelLoaded();
  return {
    webgpu_available: state.gpu.available,
    gpu_vram_gb: state.gpu.vramGb,
    storage_quota_gb: quota / GB,
    storage_used_gb: usage / GB,
    webgpu_context_losses: state.contextLosses,
    memory_errors: state.memoryErrors,
    threads: loaded ? wllama.getNumThreads() : navigator.hardwareConcurrency || 1,
    multi_thread: loaded ? wllama.isMultithread() : self.crossOriginIsolated === true,
    cached_models: await cachedModels(),
  };
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
  if (state.gpu.available && /webgpu|gpu|device (was )?lost/i.test(message)) {
    return { code: 'WEBGPU_ERROR', message };
  }
  if (/exceed.*context|context size|too long/i.test(message)) {
    return { code: 'VALIDATION_ERROR', message };
  }
  return { code: 'INFERENCE_ERROR', message };
}

// ---- model loading ---------------------------------------------------------------
async function load(message) {
  const { model_id: modelId, url, size_bytes: size, n_ctx: nCtx } = message.data;
  const absolute = new URL(url, location.href).href;
  const cache = wllama.cacheManager;
  const headers = apiKey ? { Authorization: `Bearer ${apiKey}` } : {};
  show('model', `${modelId} (loading)`);
  try {
    const name = await cache.getNameFromURL(absolute);
    let fromCache = (await cache.getSize(name)) === size;
    if (!fromCache) {
      await cache.delete(name).catch(() => {});
      await cache.download(absolute, {
        headers,
        progressCallback: ({ loaded, total }) => {
          $('progress').value = total ? loaded / total : 0;
          send({ type: 'load_progress', id: message.id, data: { model_id: modelId, loaded, total: total || size } });
        },
      });
    }
    $('progress').value = 1;
    const blob = await cache.open(name);
    if (!blob) throw new Error('the downloaded model is missing from browser storage');
    if (wllama.isModelLoaded()) await wllama.exit();
    const started = performance.now();
    await wllama.loadModel([blob], {
      n_ctx: nCtx,
      n_threads: navigator.hardwareConcurrency || 1,
      n_gpu_layers: state.gpu.available ? 999 : 0,
    });
    const info = wllama.getLoadedContextInfo();
    state.modelId = modelId;
    const backend = state.gpu.available ? 'WebGPU' : 'WebAssembly';
    show('model', modelId);
    show('backend', `${backend}, ${wllama.getNumThreads()} thread(s)`);
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
      },
    });
  } catch (err) {
    console.error('model load failed', err);
    const error = classify(err);
    show('model', `${modelId} (failed: ${error.message})`);
    const code = error.code === 'INFERENCE_ERROR' ? 'MODEL_LOAD_FAILED' : error.code;
    send({ type: 'load_failed', id: message.id, data: { model_id: modelId, code, message: error.message } });
  }
  sendReadings();
}

async function unload() {
  state.modelId = null;
  if (wllama.isModelLoaded()) await wllama.exit();
  show('model', 'none');
}

// ---- generation --------------------------------------------------------------------
// Runs one completion; `emit` gets {type: admitted|token}; returns {finish_reason, usage}.
async function complete(options, controller, emit) {
  let admitted = false;
  let finish = null;
  let usage = null;
  const admit = (n) => {
    if (!admitted) {
      admitted = true;
      emit({ type: 'admitted', prompt_tokens: n });
    }
  };
  await wllama.createCompletion({
    ...options,
    stream: true,
    return_progress: true,
    abortSignal: controller.signal,
    onData: (chunk) => {
      if (chunk.prompt_progress) admit(chunk.prompt_progress.total);
      const choice = chunk.choices && chunk.choices[0];
      if (choice && choice.text) {
        admit(-1);
        emit({ type: 'token', text: choice.text });
      }
      if (choice && choice.finish_reason) finish = choice.finish_reason;
      if (chunk.usage) usage = chunk.usage;
      else if (chunk.timings) usage = { prompt_tokens: chunk.timings.prompt_n, completion_tokens: chunk.timings.predicted_n };
    },
  });
  return { finish_reason: finish || 'stop', usage };
}

async function generate(message) {
  const id = message.id;
  if (state.abortedEarly.delete(id)) {
    send({ type: 'error', id, code: 'CANCELLED', message: 'aborted' });
    return;
  }
  const controller = new AbortController();
  state.current = { id, controller };
  state.lastOptions = message.data; // bench/browser_engine.py replays it directly
  state.requests += 1;
  show('requests', String(state.requests));
  try {
    const result = await complete(message.data, controller, (event) => {
      if (event.type === 'token') send({ type: 'token', id, text: event.text });
      else send({ type: 'admitted', id, prompt_tokens: event.prompt_tokens });
    });
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
    if (controller.signal.aborted || err instanceof WllamaAbortError || (err && err.name === 'AbortError')) {
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
      const result = await complete(options, controller, (event) => {
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

await probeGpu();
show('backend', state.gpu.available ? 'WebGPU available' : 'WebAssembly (no WebGPU adapter)');
connect();
setInterval(() => { if (state.ws && state.ws.readyState === WebSocket.OPEN) sendReadings(); }, READINGS_EVERY_MS);
