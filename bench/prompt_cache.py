"""The prompt cache on disk: time to first token for an agent's request (a ~1,500-token
system prompt with a tool list), (a) cold and (b) after a server restart with the cache,
and (c) the same request on llama-server (the vendored build, -np 1), cold and after a
restart: it has no automatic disk cache, so after a restart it reads the prompt again.
With `--slot-save-path` it saves and restores a slot's KV cells when a client asks by
file name; (c') times that: restore the slot saved before the restart, then the request.

Each round: a server with an empty prompt cache folder answers the request (cold, and
its prompt is saved), then is stopped; a new server on the same folder answers it again
(after restart); another new server answers the same system prompt with another question.
A server with prefix reuse and the prompt cache off runs alongside and answers the same
request cold every round (the cost of saving, if any, shows as (a) above its figure).
Each server gets a short warm-up request first (llama-server's is a different prompt, so
its in-memory prompt cache holds nothing of the request). Time to first token is the client's time
for a non-streaming request of max_tokens=1 (reading the prompt + one token). Usage:

    .venv/bin/python bench/prompt_cache.py [--rounds 5] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import BrowserLLMTarget, LlamaServerTarget, Target, default_model_path
from llama_server_build import llama_server_binary

TOPICS = [
    "billing disputes",
    "shipping delays",
    "password resets",
    "refund eligibility",
    "damaged parcels",
    "account closures",
    "gift cards",
    "warranty claims",
]

SYSTEM = "You are the support agent of an online hardware shop. Follow these rules.\n" + "".join(
    f"Rule {i + 1} ({topic}): when a customer writes about {topic}, first look up their "
    f"order with the lookup_order tool, quote the order number back to them, check the "
    f"policy section {i + 3}.{i % 4 + 1} before promising anything, never invent dates or "
    f"amounts, keep the answer under {80 + 10 * i} words, and offer to open a ticket with "
    f"the open_ticket tool if the customer is still unhappy after your answer. Escalate "
    f"to a human with the escalate tool when the amount involved is above {100 * (i + 1)} "
    f"euros or when the customer mentions a lawyer, a chargeback or a safety problem.\n"
    for i, topic in enumerate(TOPICS)
)


def _tool(name: str, description: str, **fields: str) -> dict[str, Any]:
    properties = {field: {"type": "string", "description": text} for field, text in fields.items()}
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {"type": "object", "properties": properties, "required": list(fields)},
        },
    }


TOOLS = [
    _tool("lookup_order", "Find an order by its number", order_id="the order number"),
    _tool("open_ticket", "Open a support ticket", subject="one line", body="the details"),
    _tool("escalate", "Hand the conversation to a human", reason="why"),
    _tool("refund", "Refund an order", order_id="the order number", amount="in euros"),
    _tool("track", "Where a parcel is now", tracking_id="the carrier's tracking number"),
]

# Agents send their tool list in the system prompt too; here it goes there as JSON, so no
# tool grammar is involved and max_tokens=1 measures reading the prompt + one token.
SYSTEM += "\nTools you can call, as JSON schemas:\n" + json.dumps(TOOLS, indent=1)

QUESTIONS = [
    "My order 4417 arrived with a cracked screen. What now?",
    "Can I still return the keyboard I bought three weeks ago?",
]


def _ask(target: Target, question: str) -> tuple[float, dict[str, Any]]:
    body = {
        "messages": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": question},
        ],
        "max_tokens": 1,
        "temperature": 0,
    }
    url = f"http://127.0.0.1:{target.port}/v1/chat/completions"
    start = time.perf_counter()
    resp = httpx.post(url, json=body, timeout=600)
    elapsed_ms = (time.perf_counter() - start) * 1000
    resp.raise_for_status()
    usage: dict[str, Any] = resp.json()["usage"]
    return elapsed_ms, usage


def _status(target: BrowserLLMTarget) -> dict[str, Any]:
    url = f"http://127.0.0.1:{target.port}/api/v1/status"
    data: dict[str, Any] = httpx.get(url, timeout=30).json()["data"]["engine"]["prompt_cache"]
    return data


def _warm(target: BrowserLLMTarget) -> None:
    url = f"http://127.0.0.1:{target.port}/api/v1/generate"
    httpx.post(url, json={"prompt": "Hello.", "max_tokens": 2}, timeout=120).raise_for_status()


def _logged_ms(target: BrowserLLMTarget, what: str) -> list[float]:
    """Engine-thread milliseconds of the prompt cache's debug lines in a server's log."""
    pattern = re.compile(rf"prompt cache: {what} .* in ([0-9.]+) ms")
    return [float(m.group(1)) for m in pattern.finditer(target.log.read_text(errors="replace"))]


def _llama_server(threads: int, slots: Path) -> LlamaServerTarget:
    return LlamaServerTarget(
        llama_server_binary(),
        default_model_path(),
        threads,
        1,
        ("--slot-save-path", str(slots)),
    )


def _slot(target: LlamaServerTarget, action: str) -> None:
    url = f"http://127.0.0.1:{target.port}/slots/0?action={action}"
    httpx.post(url, json={"filename": "agent.bin"}, timeout=600).raise_for_status()


def _warm_llama(target: LlamaServerTarget) -> None:
    url = f"http://127.0.0.1:{target.port}/completion"
    body = {"prompt": "Hello.", "n_predict": 2}
    httpx.post(url, json=body, timeout=120).raise_for_status()


def _llama_round(threads: int, slots: Path) -> tuple[float, float, float, int]:
    """llama-server: (cold, after a restart, after a restart with the slot restored by
    name) ms, and the prompt's tokens."""
    with _llama_server(threads, slots) as first:
        _warm_llama(first)
        cold, usage = _ask(first, QUESTIONS[0])
        _slot(first, "save")
    with _llama_server(threads, slots) as again:
        _warm_llama(again)
        restarted, _ = _ask(again, QUESTIONS[0])
    with _llama_server(threads, slots) as restored:
        _warm_llama(restored)
        start = time.perf_counter()
        _slot(restored, "restore")
        restore_ms = (time.perf_counter() - start) * 1000
        asked, _ = _ask(restored, QUESTIONS[0])
    return cold, restarted, restore_ms + asked, int(usage["prompt_tokens"])


def _wait_saved(folder: Path) -> list[Path]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        files = list(folder.glob("*/*.kv"))
        if files:
            return files
        time.sleep(0.05)
    raise RuntimeError("the prompt was never saved")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-llama-server", action="store_true", help="skip case (c)")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-prompt-cache-"))
    rows: dict[str, list[float]] = {"off": [], "cold": [], "restart": [], "restart_q2": []}
    if not args.no_llama_server:
        rows |= {"llama_cold": [], "llama_restart": [], "llama_restored": []}
    llama_tokens = 0
    cached: dict[str, list[int]] = {"restart": [], "restart_q2": []}
    loads: list[float] = [os.getloadavg()[0]]
    prompt_tokens = 0
    file_bytes = 0
    hit_rates: list[float] = []
    engine_ms: dict[str, list[float]] = {"copy out": [], "load": []}
    off = BrowserLLMTarget(
        threads=args.threads, BROWSER_LLM_PREFIX_CACHE="false", BROWSER_LLM_PROMPT_CACHE_GB="0"
    )
    with off:
        _warm(off)
        for r in range(args.rounds):
            folder = root / f"round-{r}"
            # debug: the engine logs what saving and loading cost its thread
            env = {"BROWSER_LLM_PROMPT_CACHE_DIR": str(folder), "BROWSER_LLM_LOG_LEVEL": "debug"}
            ms, usage = _ask(off, QUESTIONS[0])
            rows["off"].append(ms)
            with BrowserLLMTarget(threads=args.threads, **env) as first:
                _warm(first)
                ms, usage = _ask(first, QUESTIONS[0])
                rows["cold"].append(ms)
                prompt_tokens = usage["prompt_tokens"]
                file_bytes = sum(p.stat().st_size for p in _wait_saved(folder))
                engine_ms["copy out"] += _logged_ms(first, "copied out")
            # Each after its own restart, so the other question's prefix comes from disk too.
            for key, question in (("restart", QUESTIONS[0]), ("restart_q2", QUESTIONS[1])):
                with BrowserLLMTarget(threads=args.threads, **env) as again:
                    _warm(again)
                    ms, usage = _ask(again, question)
                    rows[key].append(ms)
                    cached[key].append(usage["prompt_tokens_details"]["cached_tokens"])
                    hit_rates.append(_status(again)["hit_rate"])
                    engine_ms["load"] += _logged_ms(again, "loaded")
            theirs = ""
            if not args.no_llama_server:
                slots = folder / "llama-server-slots"
                slots.mkdir(parents=True, exist_ok=True)
                cold, restarted, restored, llama_tokens = _llama_round(args.threads, slots)
                rows["llama_cold"].append(cold)
                rows["llama_restart"].append(restarted)
                rows["llama_restored"].append(restored)
                theirs = (
                    f"; llama-server cold {cold:.0f} ms, after restart {restarted:.0f} ms, "
                    f"slot restored by name {restored:.0f} ms"
                )
            loads.append(os.getloadavg()[0])
            print(
                f"round {r + 1}: off {rows['off'][-1]:.0f} ms, cold {rows['cold'][-1]:.0f} ms, "
                f"after restart {rows['restart'][-1]:.0f} ms "
                f"(other question {rows['restart_q2'][-1]:.0f} ms){theirs}, "
                f"load {loads[-1]:.1f}",
                flush=True,
            )
    medians = {key: statistics.median(values) for key, values in rows.items()}
    print(
        json.dumps(
            {
                "prompt_tokens": prompt_tokens,
                "llama_server_prompt_tokens": llama_tokens,
                "cache_file_mb": round(file_bytes / 1e6, 1),
                "cached_tokens": cached,
                "hit_rate_after_restart": hit_rates,
                "engine_thread_ms": {k: [round(x, 1) for x in v] for k, v in engine_ms.items()},
                "load_avg_1m": [round(x, 1) for x in loads],
            }
        )
    )
    print(f"{'time to first token, ' + str(args.rounds) + ' rounds (median)':52} {'ms':>8}")
    labels = {
        "off": "cache off (prefix reuse off too)",
        "cold": "(a) cold, cache on",
        "restart": "(b) after a restart, same request",
        "restart_q2": "(b') after a restart, another question",
    }
    if not args.no_llama_server:
        labels |= {
            "llama_cold": "(c) llama-server -np 1, cold",
            "llama_restart": "(c) llama-server after a restart, same request",
            "llama_restored": "(c') llama-server, restart + slot restored by name",
        }
    for key, label in labels.items():
        print(f"{label:52} {medians[key]:8.1f}")
    print(f"ratio (b) / (a): {medians['restart'] / medians['cold']:.2f}x  (target <= 0.2x)")
    print(f"ratio (b') / (a): {medians['restart_q2'] / medians['cold']:.2f}x")
    if not args.no_llama_server:
        print(
            f"llama-server after a restart / cold: "
            f"{medians['llama_restart'] / medians['llama_cold']:.2f}x; "
            "slot restored by name / cold: "
            f"{medians['llama_restored'] / medians['llama_cold']:.2f}x"
        )
        print(
            f"ours (b) / llama-server after a restart: "
            f"{medians['restart'] / medians['llama_restart']:.2f}x"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
