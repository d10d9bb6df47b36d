"""Prefix reuse across conversations: several chats with one system prompt, asked in turn.

Each chat pastes its own document and asks a question about it; the chats take turns, as
the users of one server do. With the prefix cache each chat's next question should find
its document's KV cells in the slot that read it last time. They share the system prompt,
so a slot policy that goes by "most tokens reusable now" sends every chat to the slot the
previous chat just used (those few system tokens) and throws away the cells of the
document there: every question then re-reads its whole document.

One server (the checkout on PYTHONPATH, or the installed one), non-streaming
/api/v1/generate with `history` carrying the system turn; the server's own
`cached_prompt_tokens` and time to first token (`performance.latency_ms`). The first round
fills the caches and is left out. Usage:

    .venv/bin/python bench/conversations.py [--chats 3] [--rounds 5] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import BrowserLLMTarget

SYSTEM = "You are a careful assistant. Answer from the document only, in one short sentence."
TOPICS = ["harbour", "orchard", "observatory", "bakery", "railway", "glacier"]


def document(chat: int) -> str:
    topic = TOPICS[chat % len(TOPICS)]
    return " ".join(
        f"Entry {i} of the {topic} log: reading {chat * 31 + i * 7} units, "
        f"crew of {2 + (i + chat) % 5}, status {'nominal' if (i + chat) % 3 else 'delayed'}."
        for i in range(14)
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--chats", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    server = BrowserLLMTarget(threads=args.threads, BROWSER_LLM_PREFIX_CACHE="true")
    cached: list[float] = []
    ttft: list[float] = []
    prompt_tokens = 0
    with server, httpx.Client(timeout=300) as client:
        url = f"http://127.0.0.1:{server.port}/api/v1/generate"
        for round_ in range(args.rounds):
            for chat in range(args.chats):
                body = {
                    "prompt": f"Document:\n{document(chat)}\n\nQuestion {round_}: which entry "
                    "was delayed?",
                    "history": [{"role": "system", "content": SYSTEM}],
                    "max_tokens": 4,
                    "temperature": 0,
                }
                data = client.post(url, json=body).raise_for_status().json()["data"]
                if round_ == 0:
                    continue
                usage = data["usage"]
                prompt_tokens = usage["prompt_tokens"]
                cached.append(usage["cached_prompt_tokens"])
                ttft.append(data["performance"]["latency_ms"])
    print(
        f"{args.chats} chats x {args.rounds - 1} measured rounds, prompts of ~{prompt_tokens} "
        f"tokens, {args.threads} threads"
    )
    print(
        f"cached prompt tokens per request: median {statistics.median(cached):.0f}, "
        f"min {min(cached):.0f}, max {max(cached):.0f}"
    )
    print(
        f"time to first token ms: median {statistics.median(ttft):.1f}, "
        f"mean {statistics.fmean(ttft):.1f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
