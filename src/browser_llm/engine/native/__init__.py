"""llama.cpp in this process: one engine thread owns the model and context and runs the continuous-batching scheduler."""
