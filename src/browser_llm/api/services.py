"""The composition root: builds the engines and services once, at start-up, and gives
routes typed access to them (``services(request)``) instead of raw ``app.state`` reads."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import cast

from starlette.requests import HTTPConnection
from starlette.types import ASGIApp

from browser_llm.api.middleware import API_PREFIX
from browser_llm.api.ratelimit import RateLimiter
from browser_llm.config import Settings
from browser_llm.engine.base import Engine
from browser_llm.engine.browser.engine import BrowserEngine
from browser_llm.engine.config import ContextConfig
from browser_llm.engine.pool import EnginePool
from browser_llm.models.catalog import Catalog
from browser_llm.models.storage import ModelStore
from browser_llm.observability.logs import LogBuffer
from browser_llm.observability.shared import ObservabilityPeers, snapshot
from browser_llm.service.answer import Answers
from browser_llm.service.embeddings import EmbeddingService
from browser_llm.service.generation import GenerationService
from browser_llm.service.keep_alive import KeepAlive
from browser_llm.service.model_router import ModelRouter
from browser_llm.service.prepare import Preparer
from browser_llm.service.registry import ModelRegistry
from browser_llm.service.response_store import ResponseStore
from browser_llm.service.stats import RequestStats
from browser_llm.service.status import StatusService
from browser_llm.service.tokens import TokenService

__all__ = [
    "Services",
    "build_services",
    "default_engine",
    "load_startup_model",
    "model_file_path",
    "services",
    "services_of",
    "shared_peers",
]

logger = logging.getLogger(__name__)


@dataclass
class Services:
    """Everything a route may use, built by build_services."""

    settings: Settings
    stats: RequestStats
    limiter: RateLimiter
    native: Engine
    browser: BrowserEngine
    engine: Engine  # the default one: native, or browser with BROWSER_LLM_ENGINE=browser
    registry: ModelRegistry
    router: ModelRouter
    keep_alive: KeepAlive
    generation: GenerationService
    answers: Answers  # every dialect's calls: prepared, started, answered as events
    embeddings: EmbeddingService
    status: StatusService
    logs: LogBuffer
    tokens: TokenService
    responses: ResponseStore  # /v1/responses with store=true (SQLite, opened on first use)
    # model id -> GETs of its bytes by browser engine tabs
    file_requests: dict[str, int] = field(default_factory=dict)
    # the other server processes on the same Redis, for /metrics and /debug/profile
    peers: ObservabilityPeers | None = None


def services(conn: HTTPConnection) -> Services:
    """The services of the app serving this request or WebSocket."""
    return cast(Services, conn.app.state.services)


def services_of(app: ASGIApp) -> Services | None:
    """The app's services, or None before start-up finished."""
    state = getattr(app, "state", None)
    return cast(Services | None, getattr(state, "services", None))


def default_engine(settings: Settings) -> Engine:
    config = ContextConfig(
        context_size=settings.context_size,
        batch_size=settings.batch_size,
        threads=settings.threads,
        gpu_layers=settings.gpu_layers,
        max_sequences=settings.sequences,
        flash_attn=settings.flash_attn,
        prefix_cache=settings.prefix_cache,
        adaptive_threads=settings.adaptive_threads,
        prompt_cache_dir=str(settings.prompt_cache_path),
        prompt_cache_bytes=settings.prompt_cache_bytes,
        prompt_cache_min_tokens=settings.prompt_cache_min_tokens,
        speculation=settings.speculation,
        json_repeat_limit=settings.json_repeat_limit,
    )
    if settings.fault_inject:  # testing only (tests/reliability)
        logger.warning("fault injection is ON (BROWSER_LLM_FAULT_INJECT): testing only")
    if settings.max_loaded_models > 1:
        # One engine (process) per resident model; each gets settings.threads.
        return EnginePool(
            lambda: _one_engine(settings, config),
            settings.max_loaded_models,
            memory_limit_bytes=int(settings.model_memory_gb * 1024**3),
        )
    return _one_engine(settings, config)


def _one_engine(settings: Settings, config: ContextConfig) -> Engine:
    if settings.engine_process:
        # llama.cpp runs in a child process: a native fault there cannot end this one.
        from browser_llm.engine.process.engine import ProcessEngine
        from browser_llm.engine.process.wedge import WedgeLimits

        wedge = WedgeLimits(settings.engine_wedged_s, settings.engine_load_wedged_s)
        return ProcessEngine(config, settings.fault_inject, settings.log_level, wedge=wedge)
    from browser_llm.engine.native.engine import LlamaEngine

    if settings.fault_inject:
        from browser_llm.engine.native.faults import FaultInjectingEngine

        return FaultInjectingEngine(config)
    return LlamaEngine(config)


def shared_peers(settings: Settings, stats: RequestStats) -> ObservabilityPeers | None:
    """With limits in Redis, this process's measurements go there too (for the others)."""
    url = settings.shared_redis_url
    if url is None:
        return None
    # The one Redis client lives in the cluster package (it never imports ray).
    from browser_llm.cluster.shared_observability import RedisPeers

    return RedisPeers(url, lambda: snapshot(stats.profile, stats.prometheus.registry))


def model_file_path(model_id: str) -> str:
    # wllama's cache wants URLs that end in .gguf.
    return f"{API_PREFIX}/engine/models/{model_id}/model.gguf"


def build_services(
    settings: Settings,
    native: Engine,
    stats: RequestStats,
    limiter: RateLimiter,
    logs: LogBuffer,
) -> Services:
    browser = BrowserEngine(
        settings.context_size,
        model_url=model_file_path,
        fallback=native if settings.engine_fallback else None,
        backend=settings.browser_backend,
        tab_timeout_s=settings.browser_tab_timeout_s,
    )
    engine = browser if settings.engine == "browser" else native
    registry = ModelRegistry(
        engine,
        Catalog.builtin(settings.models_dir),
        ModelStore(settings.models_dir, settings.storage_quota_gb),
        stats.profile,
        pool=engine if isinstance(engine, EnginePool) else None,  # built by default_engine
        prompt_cache=settings.prompt_cache_path,
    )
    router = ModelRouter(registry, settings.alias_map, settings.model_load_wait_s)
    keep_alive = KeepAlive(registry, settings.keep_alive_s)
    generation = GenerationService(
        engine,
        stats,
        parallel=settings.sequences,
        max_queue=settings.max_queue,
        log_prompts=settings.log_prompts,
        swapping_to=registry.swapping_to,
        loading=registry.loading_hint,
        engines={"native": native, "browser": browser},
        router=router,
        keep_alive=keep_alive,
    )
    file_requests: dict[str, int] = {}
    status = StatusService(
        engine,
        registry,
        stats,
        generation,
        browser,
        browser_in_use=settings.engine == "browser",
        file_requests=file_requests,
        keep_alive=keep_alive,
        max_loaded_models=settings.max_loaded_models if settings.engine == "native" else 1,
    )
    return Services(
        settings=settings,
        stats=stats,
        limiter=limiter,
        native=native,
        browser=browser,
        engine=engine,
        registry=registry,
        router=router,
        keep_alive=keep_alive,
        generation=generation,
        answers=Answers(generation, Preparer(registry, router)),
        embeddings=EmbeddingService(engine, router, stats, keep_alive),
        status=status,
        logs=logs,
        tokens=TokenService(engine, {"native": native, "browser": browser}),
        responses=ResponseStore(
            settings.responses_db, settings.responses_max_count, settings.responses_max_age_s
        ),
        file_requests=file_requests,
    )


async def load_startup_model(svc: Services) -> None:
    """BROWSER_LLM_MODEL: the browser engine remembers it (a tab loads it on attach);
    the native engine loads it when it is the default or the configured fallback."""
    settings, registry = svc.settings, svc.registry
    model_id = settings.model_to_load
    assert model_id is not None
    entry = registry.catalog.get(model_id)
    path = registry.store.path_for(entry) if entry is not None else None
    if path is not None:
        try:
            await svc.browser.want(model_id, str(path))
        except Exception as exc:
            logger.warning("the browser engine cannot use %s: %s", model_id, exc)
    if settings.engine == "native":
        # A model on disk is loaded before serving; one to download loads in the
        # background (/status says 'loading') so the server answers meanwhile.
        if entry is not None and registry.store.is_local(entry):
            await registry.load(model_id)
        else:
            await registry.start_load(model_id)
    elif settings.engine_fallback and path is not None:
        await svc.native.load(model_id, str(path))
