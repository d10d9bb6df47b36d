from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
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
