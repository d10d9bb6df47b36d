"""The browser-tab engine: llama.cpp (wllama) in a tab attached over a WebSocket."""
