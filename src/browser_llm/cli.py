"""The `browser-llm` command: serve, generate, status, models."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import httpx

from browser_llm import __version__
from browser_llm.cli_models import add_models_parser, run_models
from browser_llm.config import Settings

__all__ = ["main"]

_SERVE_FLAGS = {
    "host": "address to bind (default 127.0.0.1)",
    "port": "port (default 3000)",
    "model": "model id to load at start-up, or 'none'",
    "models_dir": "folder for downloaded models",
    "data_dir": "folder for the server's own data (stored responses)",
    "context_size": "KV cache size in tokens",
    "threads": "CPU threads for llama.cpp",
    "log_level": "debug, info, warning or error",
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="browser-llm", description="Local LLM server")
    parser.add_argument("--version", action="version", version=__version__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the API server")
    for name, help_text in _SERVE_FLAGS.items():
        serve.add_argument("--" + name.replace("_", "-"), dest=name, help=help_text)
    for name in ("generate", "status"):
        p = sub.add_parser(name, help=f"{name} via a running server")
        p.add_argument("--url", help="API base URL (default from BROWSER_LLM_HOST/PORT)")
        if name == "generate":
            p.add_argument("prompt")
            p.add_argument("--max-tokens", type=int)
            p.add_argument("--temperature", type=float)
            p.add_argument("--seed", type=int)
            p.add_argument("--raw", action="store_true", help="skip the chat template")
    add_models_parser(sub)
    return parser


def _base_url(args: argparse.Namespace) -> str:
    if args.url:
        return str(args.url).rstrip("/")
    settings = Settings()
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    return f"http://{host}:{settings.port}/api/v1"


def _serve(args: argparse.Namespace) -> int:
    from browser_llm.api.app import create_app
    from browser_llm.api.server import serve
    from browser_llm.observability.logs import configure_logging

    given: dict[str, Any] = {k: getattr(args, k) for k in _SERVE_FLAGS if getattr(args, k)}
    settings = Settings(**given)
    problem = settings.exposure_problem()
    if problem:
        print(f"browser-llm: {problem}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    return serve(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        grace_s=settings.shutdown_grace_s,
        log_level=settings.log_level,
        timeout_graceful_shutdown=5,
        ws_max_size=settings.max_ws_message_bytes,
    )


def _generate(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"prompt": args.prompt, "stream": True, "raw": args.raw}
    for key in ("max_tokens", "temperature", "seed"):
        if getattr(args, key) is not None:
            body[key] = getattr(args, key)
    with httpx.stream("POST", _base_url(args) + "/generate", json=body, timeout=None) as resp:
        if resp.status_code != 200:
            resp.read()
            error = resp.json().get("error", {})
            print(
                f"error {resp.status_code} {error.get('code')}: {error.get('message')}",
                file=sys.stderr,
            )
            return 1
        for line in resp.iter_lines():
            if not line.startswith("data: "):
                continue
            event = json.loads(line[6:])
            if event["type"] == "token":
                sys.stdout.write(event["data"]["token"])
                sys.stdout.flush()
            elif event["type"] == "done":
                c = event["data"]["completion"]
                perf = c["performance"]
                print(
                    f"\n[{c['tokens']} tokens, {perf['tokens_per_second']} tok/s, first token "
                    f"{perf['latency_ms']} ms, finish: {c['finish_reason']}]",
                    file=sys.stderr,
                )
            elif event["type"] == "error":
                print(f"\nerror: {event['data']['error']}", file=sys.stderr)
                return 1
    return 0


def _status(args: argparse.Namespace) -> int:
    resp = httpx.get(_base_url(args) + "/status", timeout=10)
    print(json.dumps(resp.json().get("data"), indent=2))
    return 0 if resp.status_code == 200 else 1


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    handlers = {"serve": _serve, "generate": _generate, "status": _status, "models": run_models}
    try:
        return handlers[args.command](args)
    except httpx.ConnectError:
        print(
            "cannot reach the server; start it with `make serve` or `browser-llm serve`",
            file=sys.stderr,
        )
        return 2


if __name__ == "__main__":
    sys.exit(main())
