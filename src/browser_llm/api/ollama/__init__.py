"""The Ollama dialect at /api: request models, options, routes, model routes, views."""
