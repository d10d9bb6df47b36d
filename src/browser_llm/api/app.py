"""The FastAPI application: services are built in the lifespan and kept on app.state."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from browser_llm import __version__
from browser_llm.api.errors import install_error_handlers
from browser_llm.api.middleware import API_PREFIX, RequestContextMiddleware
from browser_llm.api.ratelimit import RateLimiter
from browser_llm.api.routes import (
    debug,
    engine_page,
    generate,
    models,
    openai_compat,
    status,
    web,
    ws,
)
from browser_llm.api.security import SecurityMiddleware
from browser_llm.config import Settings
from browser_llm.engine.base import Engine
from browser_llm.models.catalog import Catalog
from browser_llm.models.storage import ModelStore
from browser_llm.observability.logs import LogBuffer
from browser_llm.observability.profile import Profile
from browser_llm.observability.prometheus import PrometheusMetrics
from browser_llm.service.generation import GenerationService
from browser_llm.service.registry import ModelRegistry
from browser_llm.service.stats import RequestStats

__all__ = ["API_PREFIX", "create_app", "default_engine"]

logger = logging.getLogger(__name__)


def default_engine(settings: Settings) -> Engine:
    from browser_llm.engine.context_config import ContextConfig

    config = ContextConfig(
        context_size=settings.context_size,
        batch_size=settings.batch_size,
        threads=settings.threads,
        gpu_layers=settings.gpu_layers,
        max_sequences=settings.sequences,
        flash_attn=settings.flash_attn,
        prefix_cache=settings.prefix_cache,
        adaptive_threads=settings.adaptive_threads,
    )
    if settings.fault_inject:  # testing only (tests/reliability)
        logger.warning("fault injection is ON (BROWSER_LLM_FAULT_INJECT): testing only")
    if settings.engine_process:
        # llama.cpp runs in a child process: a native fault there cannot end this one.
        from browser_llm.engine.process_engine import ProcessEngine

        return ProcessEngine(config, settings.fault_inject, settings.log_level)
    from browser_llm.engine.llama_engine import LlamaEngine

    if settings.fault_inject:
        from browser_llm.engine.faults import FaultInjectingEngine

        return FaultInjectingEngine(config)
    return LlamaEngine(config)


def create_app(settings: Settings | None = None, engine: Engine | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        native = engine or default_engine(settings)
        native.start()
        browser = engine_page.build_browser_engine(settings, native)
        app.state.browser_engine = browser
        eng = browser if settings.engine == "browser" else native
        log_buffer = LogBuffer(
            level=logging.DEBUG if settings.log_level == "debug" else logging.INFO,
            hub=app.state.stats.hub,
        )
        package_logger = logging.getLogger("browser_llm")
        package_logger.addHandler(log_buffer)
        if package_logger.getEffectiveLevel() > log_buffer.level:
            package_logger.setLevel(log_buffer.level)
        app.state.logs = log_buffer
        stats: RequestStats = app.state.stats
        registry = ModelRegistry(
            eng,
            Catalog.builtin(settings.models_dir),
            ModelStore(settings.models_dir, settings.storage_quota_gb),
            stats.profile,
        )
        app.state.settings = settings
        app.state.engine = eng
        app.state.registry = registry
        app.state.generation = GenerationService(
            eng,
            stats,
            parallel=settings.sequences,
            max_queue=settings.max_queue,
            log_prompts=settings.log_prompts,
            swapping_to=registry.swapping_to,
            loading=registry.loading_hint,
            engines={"native": native, "browser": browser},
        )
        if settings.model_to_load:
            try:
                await engine_page.load_startup_model(registry, native, browser, settings)
            except Exception as exc:
                logger.error("could not load model %s at start-up: %s", settings.model, exc)
        try:
            yield
        finally:
            browser.shutdown()
            native.shutdown()
            package_logger.removeHandler(log_buffer)

    app = FastAPI(
        title="Browser LLM",
        version=__version__,
        description="Local LLM inference on llama.cpp. Every response is wrapped in the "
        "envelope {success, data, error, metadata}; see docs/api.md.",
        lifespan=lifespan,
    )
    stats = RequestStats(Profile(), PrometheusMetrics())
    app.state.stats = stats
    app.state.limiter = RateLimiter(settings)
    app.state.engine_file_requests = {}  # model id -> GETs by browser engine tabs
    # Outermost last: request id -> CORS (answers preflights) -> security -> routes.
    app.add_middleware(SecurityMiddleware, settings=settings, limiter=app.state.limiter)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "X-API-Key", "X-Request-ID"],
            expose_headers=[
                "X-Request-ID",
                "X-RateLimit-Limit",
                "X-RateLimit-Remaining",
                "X-RateLimit-Reset",
                "Retry-After",
            ],
        )
    app.add_middleware(RequestContextMiddleware, prometheus=stats.prometheus)
    install_error_handlers(app)
    for module in (generate, models, status, debug, ws):
        app.include_router(module.router, prefix=API_PREFIX)
    app.include_router(debug.metrics_router)
    app.include_router(engine_page.api_router, prefix=API_PREFIX)
    app.include_router(engine_page.page_router)
    app.include_router(openai_compat.router)
    app.include_router(web.router)  # the page at / and its files under /static/
    return app
