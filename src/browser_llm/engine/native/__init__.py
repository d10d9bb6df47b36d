"""llama.cpp in this process: one engine thread owns the model and the batch scheduler."""
