// WebGPU as wllama uses it.
//
// llama.cpp's WebGPU backend (ggml-webgpu) runs inside wllama's Web Worker. It registers a
// device only when the adapter offers 'shader-f16'; without it wllama runs every layer on
// WebAssembly and says nothing. So the page cannot learn what ran from its own adapter: this
// module checks the adapter against the backend's rule, and installs a small hook in wllama's
// worker that reports the device wllama itself creates (adapter info, loss, GPU errors) over a
// BroadcastChannel. See docs/browser-engine.md "WebGPU".

export const REQUIRED_FEATURE = 'shader-f16';

function describe(adapter) {
  const info = adapter.info || {};
  return {
    vendor: info.vendor || '',
    architecture: info.architecture || '',
    device: info.device || '',
    description: info.description || '',
    is_fallback_adapter: Boolean(info.isFallbackAdapter ?? adapter.isFallbackAdapter),
    shader_f16: adapter.features.has(REQUIRED_FEATURE),
  };
}

// The adapter the page sees and whether llama.cpp's WebGPU backend can use it (its own rule).
export async function probeAdapter() {
  if (!navigator.gpu) {
    return { adapter: null, usable: false, reason: 'this browser has no WebGPU (navigator.gpu)' };
  }
  let adapter = null;
  try {
    adapter = await navigator.gpu.requestAdapter();
  } catch (err) {
    return { adapter: null, usable: false, reason: `requestAdapter() failed: ${err.message}` };
  }
  if (!adapter) {
    return { adapter: null, usable: false, reason: 'navigator.gpu.requestAdapter() gave no adapter' };
  }
  const info = describe(adapter);
  if (!info.shader_f16) {
    const name = `${info.vendor} ${info.architecture}`.trim() || 'the adapter';
    const reason = `${name} lacks '${REQUIRED_FEATURE}', which llama.cpp's WebGPU backend requires`;
    return { adapter: info, usable: false, reason };
  }
  return { adapter: info, usable: true, reason: null };
}

// Runs inside wllama's worker (and its pthread workers) before llama.cpp starts: serialised by
// DeviceWatch.hookSource(), so it must not use anything from this module.
function webgpuHook(channelName) {
  if (typeof GPU === 'undefined' || typeof GPUAdapter === 'undefined') return;
  let channel = null;
  let device = null;
  let injected = false;
  const post = (message) => {
    if (!channel) {
      channel = new BroadcastChannel(channelName);
      channel.onmessage = (event) => {
        if (event.data && event.data.type === 'destroy' && device) {
          injected = true; // fault injection by a test: counted as a loss
          device.destroy();
        }
      };
    }
    channel.postMessage(message);
  };
  const requestDevice = GPUAdapter.prototype.requestDevice;
  GPUAdapter.prototype.requestDevice = async function hookedRequestDevice(...args) {
    const created = await requestDevice.apply(this, args);
    device = created;
    const info = this.info || {};
    created.lost.then((lost) => {
      post({ type: 'lost', reason: lost.reason, message: String(lost.message || ''), injected });
    });
    created.addEventListener('uncapturederror', (event) => {
      const error = event.error || {};
      post({ type: 'gpu_error', kind: error.constructor ? error.constructor.name : '', message: String(error.message || '') });
    });
    post({ type: 'device', vendor: info.vendor || '', architecture: info.architecture || '' });
    return created;
  };
}

// The page's end of the hook: one channel per page, so several tabs never mix their devices.
export class DeviceWatch {
  constructor(onEvent) {
    this.name = `browser-llm-webgpu-${Math.random().toString(36).slice(2)}${Date.now()}`;
    this.channel = new BroadcastChannel(this.name);
    this.channel.onmessage = (event) => onEvent(event.data || {});
  }

  hookSource() {
    return `(${webgpuHook.toString()})(${JSON.stringify(this.name)});\n`;
  }

  // Tests: destroy wllama's device from inside its worker (a real loss on the real device).
  destroyDevice() {
    this.channel.postMessage({ type: 'destroy' });
  }
}
