/**
 * The spec's TypeScript SDK example (spec_example.ts, unchanged) against a real server: the
 * spec's own usage, with the server's URL given to the constructor. Runs only when
 * BROWSER_LLM_URL is set (tests/e2e/test_spec_examples.py sets it); skipped otherwise.
 */
import assert from "node:assert/strict";
import { test } from "node:test";

import { BrowserLLMClient } from "./spec_example.js";

const URL = process.env.BROWSER_LLM_URL;
const skip = URL ? false : "BROWSER_LLM_URL is not set (tests/e2e/test_spec_examples.py sets it)";

test("the spec's example: generate", { skip }, async () => {
  const client = new BrowserLLMClient(URL);
  // Simple generation
  const result = await client.generate({
    prompt: "What is AI?",
    max_tokens: 16,
  });
  assert.equal(typeof result.text, "string");
  assert.ok(result.text.length > 0);
  assert.ok(result.tokens > 0 && result.tokens <= 16);
  assert.equal(result.usage.total_tokens, result.usage.prompt_tokens + result.usage.completion_tokens);
  assert.ok(["stop", "length"].includes(result.finish_reason));
});

test("the spec's example: generateStream", { skip }, async () => {
  const client = new BrowserLLMClient(URL);
  const params = { prompt: "Write a story", max_tokens: 16, temperature: 0 };
  const tokens: string[] = [];
  // Streaming generation
  for await (const token of client.generateStream(params)) {
    tokens.push(token);
  }
  assert.ok(tokens.length > 0);
  // Greedy: the streamed text is the text of the same request answered whole.
  const whole = await client.generate(params);
  assert.equal(tokens.join(""), whole.text);
});

test("the spec's example: getModels and getStatus", { skip }, async () => {
  const client = new BrowserLLMClient(URL);
  const models = await client.getModels();
  assert.ok(Array.isArray(models.models) && models.models.length > 0);
  for (const model of models.models) {
    assert.equal(typeof model.id, "string");
    assert.equal(typeof model.downloaded, "boolean");
  }
  const status = await client.getStatus();
  assert.equal(status.status, "ready");
  assert.ok(status.model && status.model.loaded);
  assert.ok(models.models.some((m) => m.id === status.model?.id));
});

test("the spec's example: an error is thrown with the server's message", { skip }, async () => {
  const client = new BrowserLLMClient(URL);
  await assert.rejects(client.generate({ prompt: "hi", max_tokens: 0 }), (error: Error) => {
    assert.ok(error.message.length > 0);
    return true;
  });
});
