import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import {
  BrowserLLMClient,
  BrowserLLMError,
  NotFoundError,
  OverloadedError,
  RateLimitError,
  ValidationError,
} from "../src/index.js";
import { startServer, type TestServer } from "./server.js";

const MODEL = "smollm2-135m-instruct-q4";
let server: TestServer;
let client: BrowserLLMClient;

before(async () => {
  server = await startServer();
  client = new BrowserLLMClient(server.baseURL);
});
after(async () => {
  await server.stop();
});

test("generate and generateStream give the same greedy text", async () => {
  const params = { prompt: "Say hello.", max_tokens: 16, temperature: 0 };
  const whole = await client.generate(params);
  let streamed = "";
  for await (const token of client.generateStream(params)) streamed += token;
  assert.equal(streamed, whole.text);
  assert.equal(client.lastCompletion?.text, whole.text);
  assert.ok(whole.usage.completion_tokens > 0);
});

test("models, model details, load and status", async () => {
  const models = await client.getModels();
  assert.ok(models.models.some((m) => m.id === MODEL && m.loaded));
  assert.equal((await client.getModel(MODEL)).id, MODEL);
  assert.equal((await client.loadModel(MODEL)).status, "loaded");
  assert.equal((await client.getStatus()).model?.id, MODEL);
});

test("errors carry the API code", async () => {
  await assert.rejects(client.generate({ prompt: "x", max_tokens: 0 }), (err: unknown) => {
    assert.ok(err instanceof ValidationError);
    assert.equal((err as BrowserLLMError).code, "VALIDATION_ERROR");
    assert.equal((err as BrowserLLMError).status, 400);
    return true;
  });
  await assert.rejects(client.getModel("nope"), NotFoundError);
  await assert.rejects(async () => {
    for await (const _ of client.generateStream({ prompt: "x", temperature: 9 })) void _;
  }, ValidationError);
});

test("an AbortSignal stops a stream", async () => {
  const controller = new AbortController();
  let count = 0;
  await assert.rejects(async () => {
    for await (const _ of client.generateStream(
      { prompt: "Tell a long story", max_tokens: 2000, ignore_eos: true },
      controller.signal,
    )) {
      void _;
      if (++count === 3) controller.abort();
    }
  }, /abort/i);
  assert.equal(count, 3);
  await new Promise((r) => setTimeout(r, 500));
  const status = await client.getStatus();
  assert.equal(status.engine.running, 0);
});

test("a WebSocket session generates and aborts", async () => {
  const session = await client.openSession();
  try {
    const tokens: string[] = [];
    const done = await session.generate("a", { prompt: "Say hi.", max_tokens: 8, temperature: 0 }, (t) =>
      tokens.push(t),
    );
    assert.equal(tokens.join(""), done.text);
    const long = session.generate("b", { prompt: "Story", max_tokens: 2000, ignore_eos: true }, () =>
      session.abort("b"),
    );
    await assert.rejects(long, (err: unknown) => (err as BrowserLLMError).code === "CANCELLED");
  } finally {
    session.close();
  }
});

for (const [code, status] of [
  ["RATE_LIMIT", 429],
  ["OVERLOADED", 503], // not in the spec: a full queue, retried like RATE_LIMIT
] as const) test(`retry on ${code} honours Retry-After`, async () => {
  let calls = 0;
  const fakeFetch = (async () => {
    calls++;
    if (calls < 3) {
      return new Response(JSON.stringify({ success: false, error: { code, message: "slow down" } }), {
        status,
        headers: { "Retry-After": "0" },
      });
    }
    return new Response(JSON.stringify({ success: true, data: { models: [] } }), { status: 200 });
  }) as typeof fetch;
  const retrying = new BrowserLLMClient("http://127.0.0.1:9/api/v1", { maxRetries: 3, fetch: fakeFetch });
  assert.deepEqual(await retrying.getModels(), { models: [] });
  assert.equal(calls, 3);
  const once = new BrowserLLMClient("http://127.0.0.1:9/api/v1", { fetch: fakeFetch });
  calls = 0;
  await assert.rejects(once.getModels(), code === "RATE_LIMIT" ? RateLimitError : OverloadedError);
});
