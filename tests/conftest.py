"""How the suite runs on two cores.

`make test` runs it under pytest-xdist: two workers, `--dist loadfile`. Each test module
runs whole on one worker, so its module-scoped server starts once (a session-scoped one
starts once per worker that needs it), and the workers take the modules longest first
(the order below), so that they end together. Much of an end-to-end test's time is waiting
(a server starting, a timer firing, a page loading, Ray placing replicas), and the other
worker fills it; the servers' engines share the cores through their thread governor
(engine/native/cpu/governor.py). Without xdist the order is pytest's own.

(Not `--dist loadgroup`: pytest-xdist 3.8 marks a group by rewriting `item._nodeid`, which
pytest 9 no longer reads, so every test became a group of its own.)

llama.cpp run inside the test process itself (a reference model) has no governor: its
OpenMP threads spin at each barrier and collapse (from ~80 to ~0.4 tok/s) while the other
worker holds a core. The test process therefore runs OpenMP with passive waits (same
results, ~30-50 tok/s whatever the load); the servers the tests start do not inherit it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

TESTS = Path(__file__).parent

# Set before anything loads llama.cpp; tests/e2e/conftest.py keeps it from the servers.
RUNNER_ONLY_ENV: dict[str, str] = {}
if "OMP_WAIT_POLICY" not in os.environ:
    RUNNER_ONLY_ENV["OMP_WAIT_POLICY"] = os.environ["OMP_WAIT_POLICY"] = "PASSIVE"

# The longest modules first, in seconds of `make test` (2 cores, a busy machine). wllama in
# chromium collapses beside other computing (its threads spin at barriers: 100 s alone,
# 570 s beside the tool-call tests), so it goes first, beside modules that mostly wait
# (engines killed and restarted, wedges waited for, keep-alive timers, servers draining);
# then the modules that mostly compute, whose servers' governors share the cores. The
# others follow in pytest's order. Update it from --durations when a module grows.
FIRST = [
    "browser_engine/test_chromium.py",  # 100 s
    "reliability/test_engine_process_wedge.py",  # 90 s
    "reliability/test_engine_process.py",  # 90 s
    "e2e/test_resident_models.py",  # 65 s
    "reliability/test_shutdown.py",  # 30 s
    "cluster/test_shared_rate_limit.py",  # 45 s, two servers
    "e2e/test_openai_tools.py",  # 200 s, 120 tool calls
    "cluster/test_cluster.py",  # 160 s, Ray starting and replacing replicas
    "e2e/test_template_tools.py",  # 185 s
    "e2e/test_json_closing_real.py",  # 70 s
    "e2e/test_json_mode.py",  # 50 s
    "reliability/test_disconnects.py",  # 50 s
    "e2e/test_slot_moves.py",  # 45 s
    "e2e/test_batching.py",  # 40 s
    "e2e/test_prefix_cache.py",  # 35 s
    "e2e/test_sampling_real.py",  # 20 s, llama.cpp in this process (passive waits)
]


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        # schemathesis names each endpoint's test `test_x[POST /path]` but leaves the
        # bracket out of its node id, so all share one; xdist schedules by node id and
        # would run only the first of them. The bracket goes into the id.
        if item._id.params is None and item.name.endswith("]") and "[" in item.name:
            item._id = item._id.with_params(item.name.split("[", 1)[1][:-1])
    if hasattr(config, "workerinput"):  # an xdist worker: the work queue takes this order
        seen: set[str] = set()
        twice = {item.nodeid for item in items if item.nodeid in seen or seen.add(item.nodeid)}
        if twice:
            raise pytest.UsageError(f"xdist would run only one test of each id: {sorted(twice)}")
        rank = {module: i for i, module in enumerate(FIRST)}
        order = {
            item: rank.get(item.path.relative_to(TESTS).as_posix(), len(FIRST)) for item in items
        }
        items.sort(key=lambda item: order[item])
