"""The process boundary: the native engine in a child process, and the wire between."""
