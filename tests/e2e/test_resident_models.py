"""Several resident models and keep_alive, with the real engine and real models.

A server with BROWSER_LLM_MAX_LOADED_MODELS=2 holds two models, each in its own engine
process (pids read from /status models_loaded). A third model is a copy of SmolLM2's
GGUF under another catalog id (user-models.json in the server's models dir).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import ollama
import psutil
import pytest

from browser_llm.config import DEFAULT_MODEL_ID
from tests.e2e.conftest import Server, served
from tests.e2e.test_models_real import GEMMA, load, write_user_models
from tests.modelfiles import smollm2_path

pytestmark = pytest.mark.e2e

SMOL = DEFAULT_MODEL_ID
COPY = "smollm2-copy"  # the same file under another id: a third model


def host_of(server: Server) -> str:
    return server.base_url.removesuffix("/api/v1")


def until(check: Callable[[], Any], what: str, timeout_s: float = 60) -> Any:
    """Polls until check() is truthy; fails with `what` after timeout_s."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for: {what}")


def resident(api: httpx.Client) -> dict[str, dict[str, Any]]:
    """/status models_loaded by id."""
    loaded = api.get("/status").json()["data"]["models_loaded"]
    return {m["id"]: m for m in loaded}


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def ask(api: httpx.Client, model: str, **extra: Any) -> dict[str, Any]:
    body = {"prompt": "Say hello.", "max_tokens": 6, "temperature": 0, "model": model, **extra}
    resp = api.post("/generate", json=body)
    assert resp.status_code == 200, resp.text
    data: dict[str, Any] = resp.json()["data"]
    assert data["model"] == model
    return data


@pytest.fixture(scope="module")
def pool_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("resident")
    write_user_models(
        tmp / "models", [{"id": COPY, "source": {"type": "file", "file": str(smollm2_path())}}]
    )
    with served(
        tmp,
        BROWSER_LLM_MAX_LOADED_MODELS="2",
        BROWSER_LLM_CONTEXT_SIZE="1024",
        BROWSER_LLM_PARALLEL="2",
    ) as srv:
        yield srv


@pytest.fixture
def api(pool_server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=pool_server.base_url, timeout=300) as client:
        yield client


@pytest.fixture
def two_loaded(api: httpx.Client) -> dict[str, dict[str, Any]]:
    """SmolLM2 and Gemma loaded (whatever earlier tests left), Gemma the most recent."""
    for model in (SMOL, GEMMA):
        assert load(api, model).json()["data"]["status"] == "loaded"
        ask(api, model, keep_alive=-1)
    models = resident(api)
    assert set(models) == {SMOL, GEMMA}, models
    return models


def test_two_models_answer_in_turn_without_reloading(
    api: httpx.Client, pool_server: Server, two_loaded: dict[str, dict[str, Any]]
) -> None:
    pids = {m: two_loaded[m]["pid"] for m in (SMOL, GEMMA)}
    assert pids[SMOL] != pids[GEMMA] and all(pids.values())
    loads_before = api.get("/status").json()["data"]["engine"]["restarts"]
    for _ in range(3):
        for model in (SMOL, GEMMA):
            ask(api, model)
    models = resident(api)
    assert {m: models[m]["pid"] for m in (SMOL, GEMMA)} == pids  # no process was replaced
    status = api.get("/status").json()["data"]
    assert status["engine"]["restarts"] == loads_before
    assert status["model"]["id"] == GEMMA  # the most recently used
    assert status["max_loaded_models"] == 2
    with ollama.Client(host=host_of(pool_server), timeout=120) as client:
        names = [m.model for m in client.ps().models]
    assert names == [f"{GEMMA}:latest", f"{SMOL}:latest"]  # most recently used first, as Ollama
    listed = {
        m["id"]: m["loaded"] for m in httpx.get(f"{host_of(pool_server)}/v1/models").json()["data"]
    }
    assert listed[SMOL] and listed[GEMMA] and not listed.get(COPY, False)


def test_a_third_model_evicts_the_least_recently_used_idle_one(
    api: httpx.Client, two_loaded: dict[str, dict[str, Any]]
) -> None:
    ask(api, SMOL)  # Gemma becomes the least recently used
    gemma_pid = two_loaded[GEMMA]["pid"]
    ask(api, COPY)  # loaded on demand
    models = resident(api)
    assert set(models) == {SMOL, COPY}
    # Gemma's engine process swapped its model, as a single engine does; SmolLM2's stayed.
    assert models[COPY]["pid"] == gemma_pid
    assert models[SMOL]["pid"] == two_loaded[SMOL]["pid"]


def test_a_running_stream_is_never_evicted(
    api: httpx.Client, pool_server: Server, two_loaded: dict[str, dict[str, Any]]
) -> None:
    lines: list[str] = []
    enough = threading.Event()  # the test has seen what it needs: the stream may stop

    def stream() -> None:
        body = {
            "prompt": "Count to one hundred.",
            "max_tokens": 900,
            "ignore_eos": True,  # long enough to outlast two requests and a load
            "temperature": 0,
            "stream": True,
            "model": SMOL,
        }
        with (
            httpx.Client(base_url=pool_server.base_url, timeout=300) as client,
            client.stream("POST", "/generate", json=body) as resp,
        ):
            for line in resp.iter_lines():
                lines.append(line)
                if enough.is_set():
                    return  # leaving cancels the rest on the server

    def tokens() -> int:
        return sum('"token"' in line for line in list(lines))

    runner = threading.Thread(target=stream)
    runner.start()
    try:
        until(tokens, "the stream's first token", timeout_s=120)
        ask(api, GEMMA)  # SmolLM2 (streaming) is now the least recently used
        assert resident(api)[SMOL]["busy"]
        ask(api, COPY)  # must take Gemma's place, not the busy SmolLM2's
        models = resident(api)
        assert set(models) == {SMOL, COPY} and models[SMOL]["busy"], models
        assert models[SMOL]["pid"] == two_loaded[SMOL]["pid"]
        seen = tokens()
        until(lambda: tokens() > seen + 5, "the stream to go on after the load")
    finally:
        enough.set()
        runner.join(300)
    assert not any('"error"' in line for line in lines), lines[-3:]


def test_keep_alive_0_unloads_after_the_request(
    api: httpx.Client, pool_server: Server, two_loaded: dict[str, dict[str, Any]]
) -> None:
    gemma_pid = two_loaded[GEMMA]["pid"]
    with ollama.Client(host=host_of(pool_server), timeout=120) as client:
        answer = client.generate(
            model=GEMMA, prompt="Once upon", keep_alive=0, options={"num_predict": 4}
        )
        assert answer.response
        until(lambda: GEMMA not in resident(api), "Gemma to unload")
        until(lambda: gone(gemma_pid), "Gemma's engine process to exit")
        assert [m.model for m in client.ps().models] == [f"{SMOL}:latest"]
        # An empty prompt loads (with its keep_alive) and, with keep_alive 0, unloads.
        client.generate(model=GEMMA, prompt="", keep_alive="10m")
        ps = {(m.model or "").removesuffix(":latest"): m for m in client.ps().models}
        assert set(ps) == {SMOL, GEMMA}
        left_s = ps[GEMMA].expires_at.timestamp() - time.time()  # type: ignore[union-attr]
        assert 500 < left_s <= 600
        assert ps[GEMMA].size and ps[GEMMA].size_vram == 0
        client.generate(model=GEMMA, prompt="", keep_alive=0)
        assert [m.model for m in client.ps().models] == [f"{SMOL}:latest"]


def test_keep_alive_1s_unloads_after_about_a_second(
    api: httpx.Client, two_loaded: dict[str, dict[str, Any]]
) -> None:
    gemma_pid = two_loaded[GEMMA]["pid"]
    ask(api, GEMMA, keep_alive="1s")
    ended = time.monotonic()
    assert resident(api)[GEMMA]["keep_alive_s"] == 1.0
    until(lambda: GEMMA not in resident(api), "Gemma to unload after 1 s", timeout_s=30)
    assert time.monotonic() - ended >= 0.9
    until(lambda: gone(gemma_pid), "Gemma's engine process to exit")
    assert set(resident(api)) == {SMOL}


def test_a_load_that_does_not_fit_in_memory_is_refused(tmp_path: Any) -> None:
    # SmolLM2 (98 MB) fits in 0.15 GB; Gemma (253 MB) next to it does not.
    with (
        served(
            tmp_path,
            BROWSER_LLM_MAX_LOADED_MODELS="2",
            BROWSER_LLM_MODEL_MEMORY_GB="0.15",
            BROWSER_LLM_CONTEXT_SIZE="1024",
        ) as srv,
        httpx.Client(base_url=srv.base_url, timeout=300) as api,
    ):
        resp = api.post(f"/models/{GEMMA}/load")
        assert resp.status_code == 507, resp.text
        error = resp.json()["error"]
        assert error["code"] == "STORAGE_ERROR" and error["details"]["reason"] == "memory"
        assert set(resident(api)) == {SMOL}
        ask(api, SMOL)
