"""A mixed request load for soak runs (tests/reliability/test_soak.py, bench/soak.py):
streaming, non-streaming, cancelled, invalid and WebSocket requests, several at once."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
from websockets.sync.client import connect

KINDS = (
    "json",
    "stream",
    "cancel_stream",
    "cancel_json",
    "invalid_body",
    "too_long",
    "ws",
    "ws_abort",
)


@dataclass
class LoadResult:
    outcomes: Counter[str] = field(default_factory=Counter)
    unexpected: list[str] = field(default_factory=list)  # anything that should never happen

    def add(self, kind: str, outcome: str) -> None:
        self.outcomes[f"{kind}:{outcome}"] += 1


def _body(i: int, **extra: object) -> dict[str, object]:
    # Varied prompts and lengths; greedy so any answer is reproducible.
    return {
        "prompt": f"Question {i}: name a colour.",
        "max_tokens": 2 + i % 7,
        "temperature": 0,
        **extra,
    }


def _run_one(base_url: str, client: httpx.Client, i: int, result: LoadResult) -> None:
    kind = KINDS[i % len(KINDS)]
    if kind == "json":
        resp = client.post("/generate", json=_body(i))
        _expect(result, kind, resp.status_code, (200, 503))
    elif kind == "stream":
        with client.stream("POST", "/generate", json=_body(i, stream=True)) as resp:
            last = ""
            for line in resp.iter_lines():
                if line.startswith("data: "):
                    last = json.loads(line[6:])["type"]
            ok = resp.status_code == 503 or last == "done"
            _expect(result, kind, resp.status_code if ok else 599, (200, 503))
    elif kind == "cancel_stream":
        body = _body(i, stream=True, max_tokens=500, ignore_eos=True)
        with client.stream("POST", "/generate", json=body) as resp:
            for line in resp.iter_lines():
                if line.startswith("data: "):
                    break  # leave after the first event
            _expect(result, kind, resp.status_code, (200, 503))
    elif kind == "cancel_json":
        try:
            body = _body(i, max_tokens=500, ignore_eos=True)
            resp = client.post("/generate", json=body, timeout=0.2)
            _expect(result, kind, resp.status_code, (200, 503))
        except httpx.TimeoutException:
            result.add(kind, "left")
    elif kind == "invalid_body":
        resp = client.post("/generate", json={"prompt": "x", "temperature": "hot"})
        _expect(result, kind, resp.status_code, (400,))
    elif kind == "too_long":
        resp = client.post("/generate", json={"prompt": "word " * 5000, "raw": True})
        _expect(result, kind, resp.status_code, (400, 503))
    else:
        _ws(base_url, kind, i, result)


def _ws(base_url: str, kind: str, i: int, result: LoadResult) -> None:
    abort = kind == "ws_abort"
    payload = _body(i, max_tokens=500, ignore_eos=True) if abort else _body(i)
    with connect(base_url.replace("http://", "ws://") + "/ws") as ws:
        ws.send(json.dumps({"type": "generate", "id": "g", "payload": payload}))
        while True:
            message = json.loads(ws.recv(timeout=300))
            if message["type"] == "token" and abort:
                ws.send(json.dumps({"type": "abort", "id": "g"}))
                abort = False
            elif message["type"] in ("done", "error"):
                code = message["data"].get("code", "done") if message["type"] == "error" else "done"
                allowed = ("done", "OVERLOADED", "CANCELLED")
                if code not in allowed:
                    result.unexpected.append(f"{kind}: {message}")
                result.add(kind, code)
                return


def _expect(result: LoadResult, kind: str, status: int, allowed: tuple[int, ...]) -> None:
    result.add(kind, str(status))
    if status not in allowed:
        result.unexpected.append(f"{kind}: HTTP {status}")


def run_mixed_load(
    base_url: str,
    total: int,
    concurrency: int = 3,
    on_progress: Callable[[int], None] | None = None,
) -> LoadResult:
    """Sends `total` requests of every kind in turn from `concurrency` threads."""
    result = LoadResult()
    lock = threading.Lock()
    counter = iter(range(total))

    def worker() -> None:
        with httpx.Client(base_url=base_url, timeout=300) as client:
            while True:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                try:
                    _run_one(base_url, client, i, result)
                except Exception as exc:  # recorded, never hidden
                    with lock:
                        result.unexpected.append(f"{KINDS[i % len(KINDS)]}: {exc!r}")
                if on_progress is not None:
                    on_progress(i)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return result
