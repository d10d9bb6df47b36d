"""Inference engines behind one contract (base.py): llama.cpp in this process (native/), in a child process (process/), in a browser tab (browser/), and several models at once (pool.py)."""
