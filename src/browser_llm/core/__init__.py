"""Domain errors with stable codes, plain types, durations; imports nothing of the project."""
