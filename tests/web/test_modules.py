"""The page's own modules, run inside chromium: SSE framing across chunk boundaries and
the progress shapes the models view accepts."""

from __future__ import annotations

from playwright.sync_api import Page

SSE_SPLIT = """async () => {
  const { sseEvents } = await import('/static/api.js');
  const bytes = new TextEncoder().encode(
    'data: {"type": "token", "data": {"token": "h\u00e9"}}\\r\\n\\r\\n' +
    'data: {"type": "token", "data": {"token": "\u4e16"}}\\n\\n' +
    ': a comment line\\n\\n' +
    'data: {"type": "done", "data": {"completion": {"text": "h\u00e9\u4e16"}}}\\n\\n');
  // Cut everywhere, even inside a UTF-8 character, one byte per chunk.
  const stream = new ReadableStream({
    start(controller) {
      for (const b of bytes) controller.enqueue(new Uint8Array([b]));
      controller.close();
    },
  });
  const out = [];
  for await (const event of sseEvents(stream)) out.push(event);
  return out;
}"""

PROGRESS_SHAPES = """async () => {
  const { readProgress } = await import('/static/models.js');
  return [
    readProgress({ download_progress: 0.25 }),
    readProgress({ download_progress: 50 }),
    readProgress({ download_progress: { downloaded_bytes: 30, total_bytes: 120, eta_ms: 900 } }),
    readProgress({ download_progress: null }),
    readProgress({}),
    readProgress({ download_progress: 0.5, progress: 0.75, estimated_time_ms: 10 }),
  ];
}"""


def test_sse_events_survive_any_chunking(page: Page) -> None:
    events = page.evaluate(SSE_SPLIT)
    assert events == [
        {"type": "token", "data": {"token": "hé"}},
        {"type": "token", "data": {"token": "世"}},
        {"type": "done", "data": {"completion": {"text": "hé世"}}},
    ]


def test_progress_is_read_from_the_shapes_a_server_may_send(page: Page) -> None:
    shapes = page.evaluate(PROGRESS_SHAPES)
    assert shapes == [
        {"fraction": 0.25, "eta": None},
        {"fraction": 0.5, "eta": None},
        {"fraction": 0.25, "eta": 900},
        {"fraction": None, "eta": None},
        {"fraction": None, "eta": None},
        {"fraction": 0.75, "eta": 10},
    ]
