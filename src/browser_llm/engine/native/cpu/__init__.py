"""The engine thread on a shared CPU: thread count, stalled steps, step timing."""
