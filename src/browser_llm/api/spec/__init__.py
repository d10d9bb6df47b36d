"""The seed API (docs/api.md): /api/v1 routes, the /ws WebSocket, the web pages."""
