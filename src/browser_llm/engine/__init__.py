"""Inference engines behind one contract (base.py): native/, process/, browser/, pool.py."""
