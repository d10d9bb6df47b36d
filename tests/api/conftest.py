from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from fastapi.testclient import TestClient

from browser_llm.api.app import create_app
from browser_llm.config import Settings
from tests.fakes import FakeEngine

LOCAL = "http://127.0.0.1:3000"


@pytest.fixture
def fake_engine() -> FakeEngine:
    return FakeEngine()


@pytest.fixture
def client(fake_engine: FakeEngine, tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(models_dir=tmp_path / "models", data_dir=tmp_path / "data")
    with TestClient(create_app(settings, engine=fake_engine), base_url=LOCAL) as test_client:
        yield test_client


@pytest.fixture
def idle_client(tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(models_dir=tmp_path / "models", data_dir=tmp_path / "data", model="none")
    with TestClient(create_app(settings, engine=FakeEngine()), base_url=LOCAL) as test_client:
        yield test_client


@dataclass
class LiveServer:
    """The app on the fake engine behind a real uvicorn socket (127.0.0.1), for client
    libraries that bring their own HTTP stack."""

    url: str
    engine: FakeEngine


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    engine = FakeEngine()
    app = create_app(Settings(models_dir=tmp_path / "models"), engine=engine)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the live server did not start"
        time.sleep(0.02)
    try:
        yield LiveServer(f"http://127.0.0.1:{port}", engine)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
