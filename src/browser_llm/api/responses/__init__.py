"""OpenAI's Responses API at /v1/responses: request models, calls, render, routes."""
