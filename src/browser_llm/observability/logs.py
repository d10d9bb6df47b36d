"""The one place that configures logging for the server process."""

from __future__ import annotations

import logging

__all__ = ["configure_logging"]


def configure_logging(level: str) -> None:
    logging.basicConfig(
        level=getattr(logging, level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )
    # llama.cpp's own chatter is only wanted when debugging.
    native = logging.getLogger("browser_llm.engine.llama_cpp_native")
    native.setLevel(logging.DEBUG if level == "debug" else logging.WARNING)
