// Entry point: views by URL hash (#chat, #models, #dashboard), the server state line,
// and the API key dialog.

import { call, plainError, setKeyPrompt } from "./api.js";
import { initChat } from "./chat.js";
import { initDashboard } from "./dashboard.js";
import { initModels } from "./models.js";

const $ = (id) => document.getElementById(id);
const VIEWS = ["chat", "models", "dashboard"];
const onShow = {};

function askKey(rejected) {
  const dialog = $("key-dialog");
  const input = $("api-key");
  const error = $("key-error");
  error.textContent = rejected ? "That key was not accepted. Check it and try again." : "";
  error.hidden = !rejected;
  input.value = "";
  return new Promise((resolve) => {
    const finish = (key) => {
      $("key-form").removeEventListener("submit", done);
      dialog.removeEventListener("close", closed);
      if (dialog.open) dialog.close();
      resolve(key);
    };
    const done = (event) => {
      event.preventDefault();
      const key = input.value.trim();
      if (key) finish(key);
    };
    // Closed without a key (Escape): the request fails with a plain message; the next
    // request asks again.
    const closed = () => finish("");
    $("key-form").addEventListener("submit", done);
    dialog.addEventListener("close", closed);
    if (!dialog.open) dialog.showModal();
    input.focus();
  });
}

function show() {
  const name = VIEWS.includes(location.hash.slice(1)) ? location.hash.slice(1) : "chat";
  for (const view of VIEWS) {
    $(`view-${view}`).hidden = view !== name;
    const link = $(`nav-${view}`);
    if (view === name) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  document.body.dataset.view = name;
  if (onShow[name]) onShow[name]();
}

export async function refreshServerState() {
  const line = $("server-state");
  try {
    const s = await call("/status");
    const model = s.model ? s.model.id : "no model loaded";
    line.textContent = `${s.status} · ${model}`;
    line.dataset.state = s.status;
  } catch (err) {
    line.textContent = plainError(err);
    line.dataset.state = "error";
  }
}

function init() {
  setKeyPrompt(askKey);
  initChat();
  onShow.models = initModels();
  onShow.dashboard = initDashboard();
  window.addEventListener("hashchange", () => {
    show();
    $("main").focus({ preventScroll: true });
  });
  document.addEventListener("models-changed", refreshServerState);
  document.addEventListener("server-tick", refreshServerState);
  show();
  refreshServerState();
  document.body.dataset.ready = "true"; // lets tests (and people) know the script ran
}

init();
