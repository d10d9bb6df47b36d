"""The FastAPI application: routes, middleware, and the services built at start-up
(api/services.py, reached from routes with ``services(request)``)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from browser_llm import __version__
from browser_llm.api.anthropic import routes as anthropic
from browser_llm.api.errors import install_error_handlers
from browser_llm.api.middleware import API_PREFIX, RequestContextMiddleware
from browser_llm.api.ollama import model_routes as ollama_models
from browser_llm.api.ollama import routes as ollama
from browser_llm.api.openai import embeddings as openai_embeddings
from browser_llm.api.openai import routes as openai_compat
from browser_llm.api.ratelimit import RateLimiter
from browser_llm.api.responses import routes as openai_responses
from browser_llm.api.security import SecurityMiddleware
from browser_llm.api.services import (
    build_services,
    default_engine,
    load_startup_model,
    shared_peers,
)
from browser_llm.api.spec import debug, engine_page, generate, models, status, tokens, web, ws
from browser_llm.config import Settings
from browser_llm.engine.base import Engine
from browser_llm.observability.logs import LogBuffer
from browser_llm.observability.profile import Profile
from browser_llm.observability.prometheus import PrometheusMetrics
from browser_llm.service.stats import RequestStats

__all__ = ["create_app"]

logger = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, engine: Engine | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        native = engine or default_engine(settings)
        native.start()
        log_buffer = LogBuffer(
            level=logging.DEBUG if settings.log_level == "debug" else logging.INFO,
            hub=stats.hub,
        )
        package_logger = logging.getLogger("browser_llm")
        package_logger.addHandler(log_buffer)
        if package_logger.getEffectiveLevel() > log_buffer.level:
            package_logger.setLevel(log_buffer.level)
        svc = build_services(settings, native, stats, limiter, log_buffer)
        app.state.services = svc
        svc.peers = shared_peers(settings, stats)
        if svc.peers is not None:
            svc.peers.start()
        if settings.model_to_load:
            try:
                await load_startup_model(svc)
            except Exception as exc:
                logger.error("could not load model %s at start-up: %s", settings.model, exc)
        try:
            yield
        finally:
            svc.keep_alive.close()
            svc.responses.close()
            if svc.peers is not None:
                await svc.peers.close()
            svc.browser.shutdown()
            native.shutdown()
            package_logger.removeHandler(log_buffer)

    stats = RequestStats(Profile(), PrometheusMetrics())
    limiter = RateLimiter(settings)
    app = FastAPI(
        title="Browser LLM",
        version=__version__,
        description="Local LLM inference on llama.cpp. Every response is wrapped in the "
        "envelope {success, data, error, metadata}; see docs/api.md.",
        lifespan=lifespan,
        # A body without Content-Type is JSON (security.py drops other labels than JSON).
        strict_content_type=False,
    )
    # Outermost last: request id -> CORS (answers preflights) -> security -> routes.
    app.add_middleware(SecurityMiddleware, settings=settings, limiter=limiter)
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
    for module in (generate, models, status, debug, ws, tokens):
        app.include_router(module.router, prefix=API_PREFIX)
    app.include_router(debug.metrics_router)
    app.include_router(engine_page.api_router, prefix=API_PREFIX)
    app.include_router(engine_page.page_router)
    app.include_router(openai_compat.router)
    app.include_router(openai_embeddings.router)
    app.include_router(anthropic.router)  # /v1/messages: Anthropic's shapes, errors included
    app.include_router(openai_responses.router)
    # Ollama's API at /api/<name>; the seed API is /api/v1/... (Ollama has no route "v1").
    app.include_router(ollama.router)
    app.include_router(ollama_models.router)
    app.include_router(web.router)  # the page at / and its files under /static/
    return app
