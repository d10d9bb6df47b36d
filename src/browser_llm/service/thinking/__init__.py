"""Reasoning kept apart from the answer: which models think (plan) and the streaming split."""
