"""Measurements out: the log ring buffer, metric events, Prometheus series, profiles."""
