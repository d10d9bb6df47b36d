"""The OpenAI dialect at /v1: request models, routes, tools and embeddings."""
