"""The Anthropic Messages dialect at /v1/messages: bodies, calls, rendering and routes."""
