// The models view: the catalog, download/load/unload, live progress with an ETA.
// Progress fields follow the spec (download_progress on GET /models/{id}; status, progress,
// estimated_time_ms on the load answer); a server without them still shows a busy bar.

import { ApiError, call, plainError, postJSON } from "./api.js";
import { duration, el } from "./dom.js";

const $ = (id) => document.getElementById(id);
const POLL_MS = 500;

// Per model: {phase: "loading"|"done"|"error", fraction, eta, note, error}. Survives re-renders.
const jobs = new Map();
let models = [];

export function fraction(value) {
  if (typeof value !== "number" || !Number.isFinite(value)) return null;
  const f = value > 1 ? value / 100 : value; // a percentage from some servers
  return Math.min(1, Math.max(0, f));
}

// Reads whatever progress a model's details carry: a number, or an object with bytes.
export function readProgress(details) {
  const out = { fraction: null, eta: null };
  const dp = details && details.download_progress;
  if (typeof dp === "number") out.fraction = fraction(dp);
  else if (dp && typeof dp === "object") {
    const done = dp.downloaded_bytes ?? dp.bytes ?? dp.completed;
    const total = dp.total_bytes ?? dp.total;
    out.fraction = fraction(dp.progress ?? dp.fraction ?? (total ? done / total : null));
    out.eta = dp.estimated_time_ms ?? dp.eta_ms ?? (dp.eta_s != null ? dp.eta_s * 1000 : null);
  }
  if (details && typeof details.progress === "number") out.fraction = fraction(details.progress);
  if (details && typeof details.estimated_time_ms === "number") out.eta = details.estimated_time_ms;
  return out;
}

function render() {
  const list = $("model-list");
  // Re-rendering must not drop keyboard focus: find the same control in the new cards.
  const active = document.activeElement;
  const focusedCard = active && list.contains(active) ? active.closest("[data-model-id]") : null;
  list.replaceChildren(...models.map(card));
  if (focusedCard) {
    const again = list.querySelector(`[data-model-id="${CSS.escape(focusedCard.dataset.modelId)}"]`);
    const target = again && (again.querySelector("button:not([disabled])") || again);
    if (target) target.focus();
  }
}

function card(m) {
  const job = jobs.get(m.id);
  const busy = job && job.phase === "loading";
  const title = el("h3", { id: `model-${m.id}-name` }, m.name);
  const badges = el("p", { class: "badges" }, [
    m.loaded ? el("span", { class: "badge loaded" }, "Loaded") : "",
    el("span", { class: "badge" }, m.downloaded ? "On disk" : "Not downloaded"),
  ]);
  const facts = el("dl", { class: "facts" }, [
    el("dt", {}, "Size"), el("dd", {}, m.size),
    el("dt", {}, "Memory"), el("dd", {}, m.vram_required),
    el("dt", {}, "Speed"), el("dd", {}, m.speed_tier),
    el("dt", {}, "Quality"), el("dd", {}, m.quality_tier),
  ]);
  const caps = el("ul", { class: "caps", "aria-label": "Capabilities" },
    (m.capabilities || []).map((c) => el("li", {}, c)));
  const buttons = el("div", { class: "card-buttons" });
  if (m.loaded) {
    buttons.append(button("Unload", `Unload ${m.name}`, () => unload(m), busy, "secondary"));
  } else {
    const label = m.downloaded ? "Load" : "Download and load";
    buttons.append(button(label, `${label} ${m.name}`, () => load(m), busy));
  }
  const li = el("li", { class: `model${m.loaded ? " is-loaded" : ""}`, "data-model-id": m.id,
    "aria-labelledby": title.id, tabindex: "-1" }, [title, badges, facts, caps, buttons]);
  if (job) li.append(progressBlock(m, job));
  return li;
}

function button(text, label, onClick, disabled, cls) {
  const b = el("button", { type: "button", "aria-label": label, class: cls, disabled }, text);
  b.addEventListener("click", onClick);
  return b;
}

function progressBlock(m, job) {
  const id = `progress-${m.id}`;
  const bar = el("progress", { id, max: "1", "aria-label": `Progress for ${m.name}` });
  if (job.fraction !== null) bar.value = job.fraction;
  const words = [job.note];
  if (job.phase === "loading" && job.fraction !== null) words.push(`${Math.round(job.fraction * 100)}%`);
  if (job.phase === "loading" && job.eta) words.push(`about ${duration(job.eta)} left`);
  const text = el("p", { class: "progress-text", role: "status" }, words.filter(Boolean).join(" · "));
  const block = el("div", { class: "progress", "data-phase": job.phase }, [bar, text]);
  if (job.error) block.append(el("p", { class: "error", role: "alert" }, job.error));
  return block;
}

async function refresh() {
  try {
    models = (await call("/models")).models;
    $("models-error").hidden = true;
  } catch (err) {
    $("models-error").textContent = `Could not list the models: ${plainError(err)}`;
    $("models-error").hidden = false;
  }
  render();
}

function update(id, fields) {
  jobs.set(id, { ...jobs.get(id), ...fields });
  render();
}

async function load(m) {
  const started = performance.now();
  update(m.id, { phase: "loading", fraction: m.downloaded ? null : 0, eta: null, error: null,
    note: m.downloaded ? "Loading into memory" : "Downloading" });
  let finished = false;
  // A click is an explicit load: it starts again after an earlier failure.
  const answer = postJSON(`/models/${encodeURIComponent(m.id)}/load?retry=true`, {}).then(
    (data) => ({ data }), (error) => ({ error }));
  // Poll the model's details while the load answer is pending (or says "loading").
  let loadAnswer = null;
  while (!finished) {
    const raced = await Promise.race([answer, sleep(POLL_MS).then(() => null)]);
    if (raced) loadAnswer = raced;
    if (loadAnswer && loadAnswer.error) {
      update(m.id, { phase: "error", note: "Failed", error: plainError(loadAnswer.error) });
      break;
    }
    let details = null;
    try {
      details = await call(`/models/${encodeURIComponent(m.id)}`);
    } catch {
      // a failed poll is not a failed load: the load answer decides
    }
    const status = loadAnswer && loadAnswer.data;
    if (status && status.status === "loading" && details && details.load_error) {
      // Answered "loading" at once, then failed: the model's details say why.
      update(m.id, { phase: "error", note: "Failed", error: loadFailure(details.load_error) });
      break;
    }
    const seen = readProgress(details);
    if (status && typeof status.progress === "number") seen.fraction = fraction(status.progress);
    if (status && typeof status.estimated_time_ms === "number") seen.eta = status.estimated_time_ms;
    const job = jobs.get(m.id);
    let eta = seen.eta;
    const f = seen.fraction ?? job.fraction;
    if (eta == null && f && f > 0.02 && f < 1) eta = ((performance.now() - started) * (1 - f)) / f;
    const downloaded = details ? details.downloaded : m.downloaded;
    const note = downloaded ? "Loading into memory" : "Downloading";
    if ((status && status.status === "loaded") || (details && details.loaded)) {
      const took = (performance.now() - started) / 1000;
      update(m.id, { phase: "done", fraction: 1, eta: 0, note: `Loaded in ${took.toFixed(1)} s` });
      finished = true;
    } else if (status && status.status === "error") {
      update(m.id, { phase: "error", note: "Failed", error: loadFailure(status.error) });
      break;
    } else {
      update(m.id, { fraction: f ?? null, eta, note });
    }
  }
  await refresh();
  document.dispatchEvent(new CustomEvent("models-changed"));
}

async function unload(m) {
  jobs.delete(m.id);
  try {
    await postJSON(`/models/${encodeURIComponent(m.id)}/unload`, {});
  } catch (err) {
    jobs.set(m.id, { phase: "error", fraction: null, note: "Unload failed", error: plainError(err) });
  }
  await refresh();
  document.dispatchEvent(new CustomEvent("models-changed"));
}

function loadFailure(error) {
  if (!error) return "The model could not be loaded.";
  return plainError(new ApiError(error.code, error.message, 200, error.details));
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export function initModels() {
  $("models-refresh").addEventListener("click", refresh);
  return refresh;
}
