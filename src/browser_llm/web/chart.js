// A small line chart on <canvas>: the last N values, a zero-based y axis, the latest value
// in words beside it (for screen readers and for anyone who wants the number).

import { el, fmt } from "./dom.js";

const HEIGHT = 140;
const PAD = { left: 44, right: 10, top: 10, bottom: 20 };

export class LineChart {
  constructor(figure, { unit = "", digits = 1, capacity = 60 } = {}) {
    this.figure = figure;
    this.unit = unit;
    this.digits = digits;
    this.capacity = capacity;
    this.values = [];
    this.total = 0; // values ever pushed (the tests watch this)
    const name = figure.querySelector("figcaption").textContent;
    this.canvas = el("canvas", { role: "img", "aria-label": `${name}: no data yet`, height: HEIGHT });
    this.latest = el("p", { class: "latest" }, "No data yet");
    figure.append(this.canvas, this.latest);
    figure.dataset.points = "0";
    new ResizeObserver(() => this.draw()).observe(this.canvas);
  }

  push(value) {
    if (typeof value !== "number" || !Number.isFinite(value)) return;
    this.values.push(value);
    if (this.values.length > this.capacity) this.values.shift();
    this.total += 1;
    this.figure.dataset.points = String(this.total);
    const words = `latest ${fmt(value, this.digits)} ${this.unit}`.trim();
    const max = Math.max(...this.values);
    this.latest.textContent = `${words} · highest shown ${fmt(max, this.digits)}`;
    const name = this.figure.querySelector("figcaption").textContent;
    this.canvas.setAttribute("aria-label", `${name}: ${words}`);
    this.draw();
  }

  draw() {
    const canvas = this.canvas;
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth || 300;
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(HEIGHT * ratio);
    const ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    const css = getComputedStyle(this.figure);
    const ink = css.getPropertyValue("--chart-ink").trim() || "#333";
    const grid = css.getPropertyValue("--chart-grid").trim() || "#ddd";
    const line = css.getPropertyValue("--chart-line").trim() || "#0a58ca";
    ctx.clearRect(0, 0, width, HEIGHT);
    const plotW = width - PAD.left - PAD.right;
    const plotH = HEIGHT - PAD.top - PAD.bottom;
    const top = niceMax(Math.max(0, ...this.values));
    ctx.font = "11px system-ui, sans-serif";
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    for (let i = 0; i <= 2; i += 1) {
      const v = (top * i) / 2;
      const y = PAD.top + plotH - (plotH * i) / 2;
      ctx.strokeStyle = grid;
      ctx.beginPath();
      ctx.moveTo(PAD.left, y);
      ctx.lineTo(width - PAD.right, y);
      ctx.stroke();
      ctx.fillStyle = ink;
      ctx.fillText(fmt(v, Number.isInteger(v) ? 0 : 1), PAD.left - 6, y);
    }
    const n = this.values.length;
    if (!n) return;
    const step = n > 1 ? plotW / (this.capacity - 1) : 0;
    const x0 = PAD.left + plotW - step * (n - 1);
    const yOf = (v) => PAD.top + plotH - (plotH * v) / top;
    ctx.strokeStyle = line;
    ctx.lineWidth = 2;
    ctx.beginPath();
    this.values.forEach((v, i) => (i ? ctx.lineTo(x0 + step * i, yOf(v)) : ctx.moveTo(x0, yOf(v))));
    ctx.stroke();
    ctx.fillStyle = line;
    ctx.beginPath();
    ctx.arc(x0 + step * (n - 1), yOf(this.values[n - 1]), 3, 0, Math.PI * 2);
    ctx.fill();
  }
}

// 1, 2 or 5 times a power of ten, at least the value (and at least 1).
function niceMax(value) {
  if (value <= 1) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const m of [1, 2, 5, 10]) if (m * power >= value) return m * power;
  return 10 * power;
}
