import assert from "node:assert/strict";
import { test } from "node:test";
import { SSEParser } from "../src/index.js";

const EVENTS = [
  { type: "token", data: { token: "Héllo " } },
  { type: "token", data: { token: "🙂 漢字" } },
  { type: "done", data: { completion: { text: "Héllo 🙂 漢字" } } },
];
const WIRE = new TextEncoder().encode(EVENTS.map((e) => `data: ${JSON.stringify(e)}\n\n`).join(""));

test("SSE parser survives chunks split anywhere, inside lines and characters", () => {
  for (const size of [1, 2, 3, 5, 7, 64, WIRE.length]) {
    const parser = new SSEParser();
    const got: unknown[] = [];
    for (let i = 0; i < WIRE.length; i += size) got.push(...parser.feed(WIRE.slice(i, i + size)));
    assert.deepEqual(got, EVENTS, `chunk size ${size}`);
  }
});
