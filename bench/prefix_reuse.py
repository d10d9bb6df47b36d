"""Prefix reuse: time to first token for questions about one long document.

A client asks several questions about the same ~700-token document, one after
another (a chat over a pasted file, an editor plugin sending the same file
context). With BROWSER_LLM_PREFIX_CACHE on, each request reads only the tokens
after the shared prefix; off, every request reads the whole prompt. Both servers
run at once and are asked in turn, so machine drift hits both alike. Usage:

    .venv/bin/python bench/prefix_reuse.py [--questions 8] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import BrowserLLMTarget, Sample, measure_stream

DOCUMENT = " ".join(
    f"Section {i}: the station logged wind speed {10 + i % 7} knots, pressure "
    f"{990 + i * 3} hPa and a sea temperature of {12 + i % 5} degrees."
    for i in range(28)
)
QUESTIONS = [
    "What was the pressure in section 3?",
    "Which section had the highest wind speed?",
    "Summarise the sea temperatures.",
    "What was logged in section 10?",
    "Was the pressure rising or falling?",
    "Name the first section.",
    "What is the wind speed in section 20?",
    "How many sections are there?",
]


def prompt_for(question: str) -> str:
    return f"Document:\n{DOCUMENT}\n\nQuestion: {question}\nAnswer:"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--questions", type=int, default=len(QUESTIONS))
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    cached = BrowserLLMTarget(threads=args.threads, BROWSER_LLM_PREFIX_CACHE="true")
    fresh = BrowserLLMTarget(threads=args.threads, BROWSER_LLM_PREFIX_CACHE="false")
    results: dict[str, list[Sample]] = {cached.name: [], fresh.name: []}
    reused: list[int] = []
    with cached, fresh:
        for target in (cached, fresh):
            measure_stream(target, "Warm-up.", 4)
        questions = (QUESTIONS * 4)[: args.questions]
        for question in questions:
            for target in (cached, fresh):
                results[target.name].append(measure_stream(target, prompt_for(question), 8))
        # How many tokens the last question took from the cache (non-streaming answer).
        url = f"http://127.0.0.1:{cached.port}/api/v1/generate"
        body = {"prompt": prompt_for(questions[0]), "max_tokens": 1, "raw": True}
        usage = httpx.post(url, json=body, timeout=120).json()["data"]["usage"]
        reused.append(usage["cached_prompt_tokens"])
    print(f"prompt: {usage['prompt_tokens']} tokens, of which {reused[0]} reused from the cache")
    print(f"{'system':52} {'ttft p50 ms':>12} {'ttft mean ms':>13}")
    medians = {}
    for name, samples in results.items():
        ttfts = [s.ttft_ms for s in samples[1:]]  # the first question fills the cache
        medians[name] = statistics.median(ttfts)
        print(f"{name:52} {medians[name]:12.1f} {statistics.fmean(ttfts):13.1f}")
    print(f"ratio cached / uncached: {medians[cached.name] / medians[fresh.name]:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
