// wllama with eyes: the Wllama instance this page runs, built so that what llama.cpp actually
// did is readable. wllama's worker code gets the WebGPU hook in front of it (webgpu.js), and
// llama.cpp's own log is read for the one figure wllama does not return: the layers it offloaded.
// Also: the model's bytes from browser storage, and one completion as a stream of events.
import { Wllama } from '/engine/vendor/index.js';

const WASM_URL = new URL('/engine/vendor/wasm/wllama.wasm', location.href).href;
// wllama's Emscripten worker code as a file (the same text its bundle embeds).
const WORKER_CODE_URL = new URL('/engine/vendor/worker/wllama.js', location.href).href;
const OFFLOADED = /offloaded (\d+)\/(\d+) layers to GPU/;

class HookedWllama extends Wllama {
  constructor(workerCode, config) {
    super({ default: WASM_URL }, config);
    this.workerCode = workerCode;
  }

  // wllama asks this for its worker's code; ours is its own code with the hook in front.
  getWorkerResources() {
    const resources = super.getWorkerResources();
    if (resources.compat || !this.workerCode) return resources;
    return { ...resources, jsPath: { code: this.workerCode } };
  }
}

// Native log lines are dropped except those we read; `offload` gets {offloaded, total}.
function nativeLogger(offload) {
  const read = (...args) => {
    const line = args.map(String).join(' ');
    const match = OFFLOADED.exec(line);
    if (match) offload({ offloaded: Number(match[1]), total: Number(match[2]) });
    else if (/ggml_webgpu: (Device lost|Device error)/.test(line)) console.warn(line);
  };
  return { debug: () => {}, log: read, info: read, warn: read, error: read };
}

export async function createRuntime(watch, offload) {
  const response = await fetch(WORKER_CODE_URL);
  if (!response.ok) throw new Error(`wllama's worker code is missing (${response.status})`);
  const workerCode = watch.hookSource() + (await response.text());
  const wllama = new HookedWllama(workerCode, { logger: nativeLogger(offload) });
  wllama.setCompat(null); // no CDN fallbacks: everything comes from this server
  return wllama;
}

// The model's bytes from browser storage, downloaded first when missing.
export async function modelBlob(wllama, { url, size_bytes: size }, apiKey, progress) {
  const absolute = new URL(url, location.href).href;
  const cache = wllama.cacheManager;
  const name = await cache.getNameFromURL(absolute);
  const fromCache = (await cache.getSize(name)) === size;
  if (!fromCache) {
    await cache.delete(name).catch(() => {});
    await cache.download(absolute, {
      headers: apiKey ? { Authorization: `Bearer ${apiKey}` } : {},
      progressCallback: ({ loaded, total }) => progress({ loaded, total: total || size }),
    });
  }
  const blob = await cache.open(name);
  if (!blob) throw new Error('the downloaded model is missing from browser storage');
  return { blob, fromCache };
}

// Runs one completion; `emit` gets {type: admitted|token}; returns {finish_reason, usage}.
export async function complete(wllama, options, controller, emit) {
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
