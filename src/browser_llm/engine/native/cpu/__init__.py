"""The engine thread on a shared CPU: how many threads llama.cpp may use, and ending steps other processes stall."""
