import assert from "node:assert/strict";
import { test } from "node:test";
import { BrowserLLMClient, ModelLoadFailedError } from "../src/index.js";

/** A fetch that answers POST /models/{id}/load from a script of load states. */
type LoadState = { status: string; progress?: number; error?: { code: string; message: string; details?: unknown } };

function scriptedFetch(states: LoadState[], seen: string[]): typeof fetch {
  return (async (url: string | URL | Request, init?: RequestInit) => {
    seen.push(`${init?.method ?? "GET"} ${String(url)}`);
    const state = states.shift() ?? { status: "error" };
    const body = { success: true, data: { model_id: "m1", ...state } };
    return new Response(JSON.stringify(body), { status: 200, headers: { "Content-Type": "application/json" } });
  }) as typeof fetch;
}

test("loadModel polls while the server says loading, reporting progress", async () => {
  const seen: string[] = [];
  const states = [
    { status: "loading", progress: 0 },
    { status: "loading", progress: 0.5 },
    { status: "loaded", progress: 1 },
  ];
  const client = new BrowserLLMClient("http://x/api/v1", { fetch: scriptedFetch(states, seen) });
  const progress: number[] = [];
  const result = await client.loadModel("m1", { pollMs: 1, onProgress: (p) => progress.push(p) });
  assert.equal(result.status, "loaded");
  assert.deepEqual(progress, [0, 0.5, 1]);
  // The first call starts again after an earlier failure; the polls only read.
  assert.deepEqual(seen, [
    "POST http://x/api/v1/models/m1/load?retry=true",
    ...Array(2).fill("POST http://x/api/v1/models/m1/load"),
  ]);
});

test("a failed load (status error) throws its cause instead of polling forever", async () => {
  const seen: string[] = [];
  const error = { code: "MODEL_LOAD_FAILED", message: "probe rejected it", details: { reason: "probe_rejected" } };
  const states = [{ status: "loading", progress: 0 }, ...Array(5).fill({ status: "error", error })];
  const client = new BrowserLLMClient("http://x/api/v1", { fetch: scriptedFetch(states, seen) });
  await assert.rejects(client.loadModel("m1", { pollMs: 1 }), (err: unknown) => {
    assert.ok(err instanceof ModelLoadFailedError);
    assert.deepEqual(err.details, { reason: "probe_rejected" });
    return true;
  });
  assert.equal(seen.length, 2);
});

test("loadModel without wait answers with the first state", async () => {
  const seen: string[] = [];
  const client = new BrowserLLMClient("http://x/api/v1", {
    fetch: scriptedFetch([{ status: "loading", progress: 0.1 }], seen),
  });
  assert.equal((await client.loadModel("m1", { wait: false })).status, "loading");
  assert.equal(seen.length, 1);
});

test("an abort signal stops the waiting", async () => {
  const states = Array.from({ length: 100 }, () => ({ status: "loading", progress: 0.2 }));
  const client = new BrowserLLMClient("http://x/api/v1", { fetch: scriptedFetch(states, []) });
  const controller = new AbortController();
  const pending = client.loadModel("m1", { pollMs: 5, signal: controller.signal });
  setTimeout(() => controller.abort(), 20);
  await assert.rejects(pending, /abort/i);
});
