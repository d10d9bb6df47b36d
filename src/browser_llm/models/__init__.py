"""Models on disk: the catalog, storage, downloads, and the one bounded GGUF header reader."""
