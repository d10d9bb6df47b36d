"""Browser LLM: a local LLM inference server on llama.cpp."""

__all__ = ["__version__"]

__version__ = "0.1.0"
