// The dashboard: /status figures, live charts from the WebSocket metric subscription,
// recent logs (GET /debug/logs, then live log events) with a level filter.

import { call, ensureAuthorized, plainError, wsURL } from "./api.js";
import { LineChart } from "./chart.js";
import { el, fmt } from "./dom.js";

const $ = (id) => document.getElementById(id);
const LEVELS = ["debug", "info", "warn", "error"];
const MAX_LOGS = 200;
const STATUS_EVERY_MS = 5000;

let charts = null;
let socket = null;
let retryMs = 1000;
let lastTotals = null; // {total, at}: for the request rate between status ticks
let logCount = 0;

function figure(list, name, value) {
  list.append(el("div", { class: "figure" }, [el("dt", {}, name), el("dd", {}, value)]));
}

export async function refreshStatus() {
  let s;
  try {
    s = await call("/status");
    $("dash-error").hidden = true;
  } catch (err) {
    $("dash-error").textContent = `Could not read the status: ${plainError(err)}`;
    $("dash-error").hidden = false;
    return null;
  }
  const list = $("status-figures");
  list.replaceChildren();
  const p = s.performance;
  figure(list, "State", s.status);
  figure(list, "Model", s.model ? s.model.id : "none loaded");
  figure(list, "Requests", `${p.requests_total} (${p.requests_success} ok, ${p.requests_error} failed)`);
  figure(list, "Average speed", `${fmt(p.avg_tokens_per_second)} tokens/s`);
  figure(list, "Average first token", `${fmt(p.avg_latency_ms, 0)} ms`);
  figure(list, "Stability", fmt(s.health.stability_score, 3));
  if (s.engine) {
    figure(list, "Running / slots", `${s.engine.running} / ${s.engine.parallel}`);
    figure(list, "Waiting", String(s.engine.queued));
    if (s.engine.threads_max) {
      // Fewer threads than configured: other programs hold cores and decoding runs degraded.
      const busy = s.engine.degraded
        ? ` (degraded: other programs use ${fmt(s.engine.foreign_load, 1)} cores)`
        : "";
      figure(list, "CPU threads", `${s.engine.threads} of ${s.engine.threads_max}${busy}`);
    }
    if (s.engine.restarts) {
      figure(list, "Engine restarts", `${s.engine.restarts} (last: ${s.engine.process?.last_exit ?? "?"})`);
    }
  }
  figure(list, "Memory", `${fmt(s.system.ram_gb)} GB RAM`);
  figure(list, "Storage", `${fmt(s.system.storage_used_gb, 2)} of ${fmt(s.system.storage_quota_gb)} GB`);
  return s;
}

let refreshTimer = null;
function refreshSoon() {
  if (refreshTimer || $("view-dashboard").hidden) return;
  refreshTimer = setTimeout(() => {
    refreshTimer = null;
    refreshStatus();
  }, 1000); // at most one /status call a second, however many requests finish
}

function onMetric(data) {
  if (data.kind === "request") {
    charts.tps.push(data.tokens_per_second);
    charts.ttft.push(data.time_to_first_token_ms);
    refreshSoon(); // the figures' totals and averages moved too
  } else if (data.kind === "status") {
    charts.queue.push(data.queued);
    const now = performance.now();
    if (lastTotals && now > lastTotals.at) {
      const perMinute = ((data.requests_total - lastTotals.total) * 60000) / (now - lastTotals.at);
      charts.rate.push(Math.max(0, perMinute));
    }
    lastTotals = { total: data.requests_total, at: now };
    document.dispatchEvent(new CustomEvent("server-tick")); // the header re-reads the state
  }
}

function logLine(record) {
  const when = new Date(record.timestamp * 1000).toLocaleTimeString();
  const extra = record.data ? ` ${JSON.stringify(record.data)}` : "";
  return el("li", { class: `log ${record.level}`, "data-level": record.level }, [
    el("time", {}, when), " ",
    el("span", { class: "level" }, record.level), " ",
    el("span", { class: "service" }, record.service), " ",
    el("span", { class: "message" }, record.message + extra),
  ]);
}

function addLogs(records, { prepend }) {
  const list = $("logs");
  const lines = records.map(logLine);
  if (prepend) list.prepend(...lines.reverse());
  else list.append(...lines);
  while (list.children.length > MAX_LOGS) list.lastChild.remove();
  logCount = list.children.length;
  $("logs-empty").hidden = logCount > 0;
}

async function loadLogs() {
  const level = $("log-level").value;
  try {
    const data = await call(`/debug/logs?level=${level}&limit=100`);
    $("logs").replaceChildren();
    addLogs(data.logs.reverse(), { prepend: false }); // newest first
  } catch (err) {
    $("dash-error").textContent = `Could not read the logs: ${plainError(err)}`;
    $("dash-error").hidden = false;
  }
}

function subscribe() {
  if (socket && socket.readyState === WebSocket.OPEN) {
    const payload = { events: ["metric", "log"], level: $("log-level").value };
    socket.send(JSON.stringify({ type: "subscribe", id: "dashboard", payload }));
  }
}

function setLive(state, words) {
  $("live-state").dataset.ws = state;
  $("live-state").textContent = `Live updates: ${words}`;
}

function connect() {
  let opened = false;
  const ws = new WebSocket(wsURL());
  socket = ws;
  ws.addEventListener("open", () => {
    opened = true;
    retryMs = 1000;
    setLive("open", "on");
    subscribe();
  });
  ws.addEventListener("message", (event) => {
    const msg = JSON.parse(event.data);
    if (msg.type === "metric") onMetric(msg.data);
    else if (msg.type === "log") addLogs([msg.data], { prepend: true });
  });
  ws.addEventListener("close", async () => {
    if (socket !== ws) return;
    setLive("closed", `off, reconnecting in ${Math.round(retryMs / 1000)} s`);
    document.dispatchEvent(new CustomEvent("server-tick"));
    if (!opened) {
      // Refused at the handshake: most likely a missing key; asking happens on the 401.
      try {
        await ensureAuthorized();
      } catch {
        // the server is down: just retry later
      }
    }
    setTimeout(connect, retryMs);
    retryMs = Math.min(retryMs * 2, 30000);
  });
}

// Starts the per-request charts from the server's recent history (GET /debug/profile),
// so they are not empty when the page opens.
async function seedCharts() {
  const wanted = { tokens_per_second: charts.tps, time_to_first_token_ms: charts.ttft };
  for (const [metric, chart] of Object.entries(wanted)) {
    try {
      const data = await call(`/debug/profile?metric=${metric}`);
      const values = (data.metrics[0] && data.metrics[0].values) || [];
      for (const point of values.slice(-chart.capacity)) chart.push(point.value);
    } catch {
      // no history is fine: the live events fill the chart
    }
  }
}

export function initDashboard() {
  charts = {
    tps: new LineChart($("chart-tps"), { unit: "tokens/s" }),
    ttft: new LineChart($("chart-ttft"), { unit: "ms", digits: 0 }),
    queue: new LineChart($("chart-queue"), { unit: "waiting", digits: 0 }),
    rate: new LineChart($("chart-rate"), { unit: "per minute" }),
  };
  $("log-level").addEventListener("change", () => {
    loadLogs();
    subscribe(); // a new subscription replaces the old one, with the new level
  });
  seedCharts().finally(connect); // history first, then live events: no point counted twice
  setInterval(() => {
    if (!$("view-dashboard").hidden) refreshStatus();
  }, STATUS_EVERY_MS);
  return () => Promise.all([refreshStatus(), loadLogs()]);
}

export { LEVELS };
