"""Cost of one decode step's message across the engine process boundary.

Each decode step, the engine process sends one message with that step's events (a token
per running sequence) and its counters; the server reads it and turns it back into
events. This times that round trip (encode, socket write, read, decode) on a Unix socket
pair between two threads, for 1, 4 and 8 sequences, and prints microseconds per message
next to the time a decode step of the default model takes (bench/README.md).

Usage: .venv/bin/python bench/engine_wire.py
"""

from __future__ import annotations

import socket
import statistics
import threading
import time

from browser_llm.engine.base import TokenText
from browser_llm.engine.process.wire import decode_event, encode_event, recv_message, send_message

ROUNDS = 20_000


def _step_message(sequences: int) -> dict[str, object]:
    items = [[i + 1, encode_event(TokenText(" word"))] for i in range(sequences)]
    return {"op": "events", "items": items, "stats": [sequences, 123456, 0, 7]}


def measure(sequences: int) -> float:
    """Median microseconds per message, sender to decoded events."""
    a, b = socket.socketpair()
    message = _step_message(sequences)
    done = threading.Event()
    samples: list[float] = []

    def reader() -> None:
        for _ in range(ROUNDS):
            got = recv_message(b)
            assert got is not None
            events = [decode_event(data) for _key, data in got["items"]]  # type: ignore[union-attr]
            assert len(events) == sequences
            samples.append(time.perf_counter() - got["t"])  # type: ignore[operator]
        done.set()

    thread = threading.Thread(target=reader)
    thread.start()
    for _ in range(ROUNDS):
        send_message(a, {**message, "t": time.perf_counter()})
        time.sleep(0)  # let the reader run, as a decode step would
    done.wait()
    thread.join()
    a.close()
    b.close()
    return statistics.median(samples) * 1e6


def main() -> None:
    print(f"{'sequences':>10}{'us per step message':>22}")
    for n in (1, 4, 8):
        print(f"{n:>10}{measure(n):>22.1f}")


if __name__ == "__main__":
    main()
