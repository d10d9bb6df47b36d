"""Browser LLM on a Ray Serve cluster (the optional `[cluster]` extra; docs/cluster.md).

Replicas run the engine-process engine (replica.py); the unchanged FastAPI app is the
Serve ingress with a RemoteEngine (remote_engine.py) that forwards to them through a
deployment handle; a prefix-aware request router (router.py) picks the replica.

Nothing in the single-machine server imports this package or ray.
"""
