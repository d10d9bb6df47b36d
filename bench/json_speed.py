"""JSON decode speed: plain text, JSON mode and a JSON schema, one request at a time.

Prints the median decode tok/s the server reports (`performance.tokens_per_second`)
for each kind, and JSON's ratio to plain. Compare two checkouts (before/after a
change) by pointing --repo at each; every checkout uses its own .venv:

    .venv/bin/python bench/json_speed.py --repo /work/main --runs 10
    .venv/bin/python bench/json_speed.py --repo /work/wt-json --runs 10
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import BrowserLLMTarget

PROMPT = "Write a long, detailed JSON object describing a city: its districts, people, food."
# Free strings: the model writes until it closes them. No minLength: a forced closing
# (issue 25) would add its tokens all at once and flatter the decode speed; runs that
# were closed early are counted in the output so that they can be told apart.
LONG_SCHEMA = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "maxLength": 40},
        "districts": {"type": "array", "items": {"type": "string"}},
        "story": {"type": "string"},
    },
    "required": ["city", "districts", "story"],
}
KINDS: dict[str, dict[str, Any]] = {
    "plain": {"ignore_eos": True},
    # JSON mode's request carries a frequency penalty, which costs on its own (the chain
    # then runs over the whole vocabulary every token): plain text with it too.
    "plain_penalty": {"ignore_eos": True, "frequency_penalty": 1.0},
    "json_mode": {"json_mode": True, "frequency_penalty": 1.0},
    "json_schema": {"json_schema": LONG_SCHEMA},
}


class CheckoutTarget(BrowserLLMTarget):
    """The server of another checkout, run by that checkout's own virtual environment."""

    def __init__(self, repo: Path, threads: int) -> None:
        super().__init__(threads)
        self.repo = repo
        self.name = f"Browser LLM at {repo}"

    def command(self) -> tuple[list[str], dict[str, str]]:
        cmd, env = super().command()
        return [str(self.repo / ".venv" / "bin" / "python"), *cmd[1:]], env


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repo", type=Path, default=Path(__file__).resolve().parent.parent)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    medians: dict[str, float] = {}
    speeds: dict[str, list[float]] = {kind: [] for kind in KINDS}
    tokens: dict[str, list[int]] = {kind: [] for kind in KINDS}
    closed = dict.fromkeys(KINDS, 0)
    with CheckoutTarget(args.repo.resolve(), args.threads) as target:
        url = f"http://127.0.0.1:{target.port}/api/v1/generate"
        with httpx.Client(timeout=600) as client:

            def body(kind: str) -> dict[str, Any]:
                extra = KINDS[kind]
                return {"prompt": PROMPT, "max_tokens": args.tokens, "temperature": 0, **extra}

            for kind in KINDS:
                client.post(url, json=body(kind)).raise_for_status()  # warm-up
            # Round robin: the machine's load drifts during a run (other work on it), and
            # each kind gets its share of every phase instead of one phase of its own.
            for _ in range(args.runs):
                for kind in KINDS:
                    resp = client.post(url, json=body(kind))
                    resp.raise_for_status()
                    data = resp.json()["data"]
                    speeds[kind].append(data["performance"]["tokens_per_second"])
                    tokens[kind].append(data["usage"]["completion_tokens"])
                    closed[kind] += bool((data.get("json") or {}).get("closed_early"))
    for kind in KINDS:
        medians[kind] = statistics.median(speeds[kind])
        print(
            f"{kind:12s} decode {medians[kind]:7.1f} tok/s (median of {args.runs}; "
            f"min {min(speeds[kind]):.1f}, max {max(speeds[kind]):.1f}; "
            f"{statistics.median(tokens[kind])} tokens; {closed[kind]} closed early)"
        )
    for kind in ("json_mode", "json_schema"):
        print(f"{kind} / plain: {medians[kind] / medians['plain']:.3f}")
    print(f"json_mode / plain_penalty: {medians['json_mode'] / medians['plain_penalty']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
