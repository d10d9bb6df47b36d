// wllama with eyes: the Wllama instance this page runs, built so that what llama.cpp actually
// did is readable. wllama's worker code gets the WebGPU hook in front of it (webgpu.js), and
// llama.cpp's own log is read for the one figure wllama does not return: the layers it offloaded.
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
