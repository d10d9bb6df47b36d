// The chat view: prompt box, streamed answers, stop, generation settings, the conversation.
// Model output is only ever inserted as text (textContent / text nodes), never as HTML.

import { plainError, streamGenerate } from "./api.js";
import { el, fmt } from "./dom.js";

const $ = (id) => document.getElementById(id);

// Earlier turns, sent as `history` so the model sees the conversation.
let history = [];
let running = null; // the AbortController of the answer being streamed

function readParams() {
  const form = $("params-form");
  const body = {};
  for (const name of ["temperature", "top_p", "top_k", "max_tokens"]) {
    const input = form.elements[name];
    const v = input.validity;
    if (!v.badInput && input.value.trim() === "") continue; // empty: the server's default
    const whole = input.step === "1";
    // The step only drives the arrows: 0.33 is a fine top_p; whole numbers must be whole.
    const value = Number(input.value);
    if (v.badInput || v.rangeUnderflow || v.rangeOverflow || (whole && !Number.isInteger(value))) {
      const label = form.querySelector(`label[for="${input.id}"]`).firstChild.textContent.trim();
      throw new Error(`${label} must be between ${input.min} and ${input.max}` +
        (whole ? " (a whole number)." : "."));
    }
    body[name] = value;
  }
  const stops = form.elements.stop.value.split("\n").filter((s) => s !== "");
  if (stops.length > 8) throw new Error("At most 8 stop sequences.");
  if (stops.length) body.stop = stops;
  if (form.elements.json_mode.checked) body.json_mode = true;
  const schema = form.elements.json_schema.value.trim();
  if (schema) {
    let parsed;
    try {
      parsed = JSON.parse(schema);
    } catch (err) {
      throw new Error(`The JSON schema is not valid JSON: ${err.message}`);
    }
    if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
      throw new Error("The JSON schema must be a JSON object.");
    }
    body.json_schema = parsed;
  }
  return body;
}

function showParamsError(message) {
  const p = $("params-error");
  p.textContent = message || "";
  p.hidden = !message;
  if (message) $("params-panel").open = true;
}

function addTurn(role, text) {
  const li = el("li", { class: `turn ${role}` }, [
    el("p", { class: "who" }, role === "user" ? "You" : "Model"),
    el("div", { class: "text" }, text),
  ]);
  $("conversation").append(li);
  $("chat-empty").hidden = true;
  return li;
}

function meta(completion) {
  const p = completion.performance || {};
  const parts = [
    `${completion.tokens} tokens`,
    `${fmt(p.tokens_per_second, 1)} tokens/s`,
    `first token ${fmt(p.latency_ms, 0)} ms`,
    `total ${fmt(p.total_time_ms, 0)} ms`,
  ];
  if (completion.finish_reason === "length") parts.push("stopped at max tokens");
  if (completion.json && !completion.json.valid) parts.push("JSON not valid");
  return parts.join(" · ");
}

function setRunning(controller) {
  running = controller;
  $("send").disabled = Boolean(controller);
  $("stop").disabled = !controller;
}

async function send() {
  const promptBox = $("prompt");
  const prompt = promptBox.value;
  if (!prompt.trim() || running) return;
  let params;
  try {
    params = readParams();
  } catch (err) {
    showParamsError(err.message);
    return;
  }
  showParamsError("");
  promptBox.value = "";
  addTurn("user", prompt);
  const answer = addTurn("assistant", "");
  const text = answer.querySelector(".text");
  // A status line (announced when it changes), not the streaming text itself.
  const info = el("p", { class: "meta", role: "status" }, "Waiting for the first token…");
  answer.append(info);
  answer.dataset.state = "streaming";
  answer.scrollIntoView({ block: "end" });

  const controller = new AbortController();
  setRunning(controller);
  const started = performance.now();
  let firstAt = 0;
  let pieces = 0;
  const payload = { prompt, ...params };
  if (history.length) payload.history = history;
  try {
    const completion = await streamGenerate(payload, {
      signal: controller.signal,
      onToken(token) {
        if (!pieces) {
          firstAt = performance.now();
          info.textContent = "Generating…";
        }
        pieces += 1;
        text.append(token); // a text node: safe whatever the model writes
      },
    });
    answer.dataset.state = "done";
    info.textContent = meta(completion);
    history = [...history, { role: "user", content: prompt }, { role: "assistant", content: completion.text }];
  } catch (err) {
    if (err && err.name === "AbortError") {
      answer.dataset.state = "stopped";
      const ttft = firstAt ? ` · first token ${fmt(firstAt - started, 0)} ms` : "";
      info.textContent = `Stopped after ${pieces} pieces${ttft}`;
      // Keep what was shown: the next turn continues from the visible conversation.
      history = [...history, { role: "user", content: prompt }, { role: "assistant", content: text.textContent }];
    } else {
      answer.dataset.state = "error";
      answer.classList.add("failed");
      info.textContent = plainError(err);
      info.classList.add("error");
      info.setAttribute("role", "alert"); // errors are announced at once
    }
  } finally {
    setRunning(null);
    promptBox.focus();
  }
}

function newChat() {
  if (running) running.abort();
  history = [];
  $("conversation").replaceChildren();
  $("chat-empty").hidden = false;
  $("prompt").focus();
}

export function initChat() {
  $("chat-form").addEventListener("submit", (event) => {
    event.preventDefault();
    send();
  });
  $("prompt").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      send();
    }
  });
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && running && !$("key-dialog").open) running.abort();
  });
  $("stop").addEventListener("click", () => running && running.abort());
  $("new-chat").addEventListener("click", newChat);
  // On a phone the settings panel starts closed, so the conversation has the room.
  if (window.matchMedia("(max-width: 700px)").matches) $("params-panel").open = false;
}
