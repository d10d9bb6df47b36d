"""Structured answers, side by side: the same chat requests with a strict `json_schema`
response format, on Browser LLM checkouts and/or llama.cpp's llama-server.

Per answer: finish reason, parses, validates against the schema, a string value that
loops (a span of 4+ characters repeated 4+ times in a row), answer tokens, the tokens its
whitespace costs (the answer's tokens minus those of the same value written on one line
with single spaces, as the grammar before issue 36 allowed; counted by the Browser LLM
target's tokenizer), and the answer itself (to read whether it is sensible). Compare a
change by pointing --repo at each checkout (each uses its own .venv), and add
--llama-server for the peer:

    .venv/bin/python bench/structured_answers.py --repo /work/main --repo . --llama-server
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import httpx
import jsonschema

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import LlamaServerTarget, Target, default_model_path
from json_speed import CheckoutTarget

_S = {"type": "string"}
CASES: list[tuple[str, str, dict[str, Any]]] = [
    (
        "event",
        "Extract the event: 'Team meeting with Sarah and Tom on Friday March 3rd at 10am "
        "in room 4B to plan the product launch.'",
        {
            "type": "object",
            "properties": {
                "title": _S,
                "date": _S,
                "time": _S,
                "location": _S,
                "attendees": {"type": "array", "items": _S},
            },
            "required": ["title", "date", "time", "location", "attendees"],
            "additionalProperties": False,
        },
    ),
    (
        "user",
        "Extract the user: 'John Smith is a 34-year-old software engineer from Boston. "
        "You can reach him at john.smith@example.com.'",
        {
            "type": "object",
            "properties": {
                "name": _S,
                "age": {"type": "integer"},
                "email": _S,
                "city": _S,
                "occupation": _S,
            },
            "required": ["name", "age", "email", "city", "occupation"],
            "additionalProperties": False,
        },
    ),
    (
        "recipe",
        "Give me a simple recipe for pancakes.",
        {
            "type": "object",
            "properties": {
                "name": _S,
                "ingredients": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"name": _S, "amount": _S},
                        "required": ["name", "amount"],
                        "additionalProperties": False,
                    },
                },
                "steps": {"type": "array", "items": _S},
            },
            "required": ["name", "ingredients", "steps"],
            "additionalProperties": False,
        },
    ),
    (
        "joke",
        "Tell me a joke about cats, and rate how funny it is from 1 to 10.",
        {
            "type": "object",
            "properties": {"setup": _S, "punchline": _S, "rating": {"type": "integer"}},
            "required": ["setup", "punchline", "rating"],
            "additionalProperties": False,
        },
    ),
    (
        "capital",
        "What is the capital of Japan?",
        {
            "type": "object",
            "properties": {"country": _S, "capital": _S},
            "required": ["country", "capital"],
            "additionalProperties": False,
        },
    ),
    (
        "sentiment",
        "Classify the sentiment of this review: 'I love this product, it works great!'",
        {
            "type": "object",
            "properties": {
                "sentiment": {"type": "string", "enum": ["positive", "negative", "neutral"]},
                "confidence": {"type": "number"},
            },
            "required": ["sentiment", "confidence"],
            "additionalProperties": False,
        },
    ),
]

_LOOP = re.compile(r"(.{4,}?)\1{3,}", re.DOTALL)


def strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (k, *strings(v))]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    return []


def loops(text: str) -> bool:
    """A string value (or, when the text does not parse, the raw text) that repeats."""
    try:
        values = strings(json.loads(text))
    except json.JSONDecodeError:
        values = [text]
    return any(_LOOP.search(s) for s in values)


def ask(base: str, prompt: str, schema: dict[str, Any], max_tokens: int) -> dict[str, Any]:
    model = httpx.get(f"{base}/v1/models", timeout=30).json()["data"][0]["id"]
    body = {
        "model": model,
        "messages": [{"role": "user", "content": prompt}],
        "temperature": 0,
        "max_tokens": max_tokens,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "answer", "strict": True, "schema": schema},
        },
    }
    resp = httpx.post(f"{base}/v1/chat/completions", json=body, timeout=600)
    resp.raise_for_status()
    data = resp.json()
    text = data["choices"][0]["message"]["content"] or ""
    try:
        value = json.loads(text)
        parses = True
        valid = jsonschema.Draft202012Validator(schema).is_valid(value)
    except json.JSONDecodeError:
        parses = valid = False
    return {
        "finish": data["choices"][0]["finish_reason"],
        "parses": parses,
        "valid": valid,
        "loops": loops(text),
        "tokens": data["usage"]["completion_tokens"],
        "text": text,
    }


def whitespace_tokens(base: str, text: str) -> int | None:
    """Tokens of the answer minus tokens of its value on one line (None: no value)."""
    try:
        one_line = json.dumps(json.loads(text), ensure_ascii=False)
    except json.JSONDecodeError:
        return None
    url = f"{base}/api/v1/tokenize"
    counts = [
        httpx.post(url, json={"text": t}, timeout=60).json()["data"]["count"]
        for t in (text, one_line)
    ]
    return int(counts[0] - counts[1])


def run(target: Target, max_tokens: int) -> list[dict[str, Any]]:
    base = f"http://127.0.0.1:{target.port}"
    with target:
        results = [ask(base, prompt, schema, max_tokens) for _, prompt, schema in CASES]
        for r in results:
            if not isinstance(target, LlamaServerTarget):
                r["ws_tokens"] = whitespace_tokens(base, r["text"])
        return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repo", type=Path, action="append", default=[])
    parser.add_argument("--llama-server", action="store_true")
    parser.add_argument("--max-tokens", type=int, default=150)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--show", action="store_true", help="print every answer")
    args = parser.parse_args()
    targets: list[Target] = [CheckoutTarget(r.resolve(), args.threads) for r in args.repo]
    if args.llama_server:
        from llama_server_build import llama_server_binary

        server = LlamaServerTarget(llama_server_binary(), default_model_path(), args.threads, 1)
        targets.append(server)
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    for target in targets:
        results = run(target, args.max_tokens)
        print(f"\n{target.name} (max_tokens {args.max_tokens}, temperature 0)")
        print(f"{'case':<10} {'finish':<7} parses valid loops tokens whitespace")
        for (case, _, _), r in zip(CASES, results, strict=True):
            print(
                f"{case:<10} {r['finish']:<7} {r['parses']!s:<6} {r['valid']!s:<5} "
                f"{r['loops']!s:<5} {r['tokens']:>6} {r.get('ws_tokens', '-')!s:>10}"
            )
            if args.show:
                print("   ", json.dumps(r["text"])[:400])
        stops = sum(r["finish"] == "stop" and r["valid"] for r in results)
        print(f"stop+valid {stops}/{len(results)}, loops {sum(r['loops'] for r in results)}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
