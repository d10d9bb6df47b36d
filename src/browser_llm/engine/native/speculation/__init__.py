"""Speculative decoding by prompt lookup: drafts found in a sequence's own prompt and
output (drafts.py), how many draft rows each sequence gets in a step (budget.py), and
which drafted tokens the sampled ones confirm (verify.py). Pure Python, no llama.cpp."""
