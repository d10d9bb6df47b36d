"""The process boundary: the native engine in a child process, the wire between them, and the child's entry point."""
