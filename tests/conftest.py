"""How the suite runs on two cores.

`make test` runs it under pytest-xdist: two workers, `--dist loadgroup`. Each group runs
whole on one worker, in its own order: a module of the end-to-end tiers (its module-scoped
server starts once), the web tier (its Playwright is package-scoped), and the fast tiers
together. A session-scoped server starts once per worker that needs it. The workers take
the groups longest first, so they end together. Much of an end-to-end test's time is
waiting (a server starting, a timer firing, a page loading, Ray placing replicas), and
the other worker fills it; the servers' engines share the cores through their thread
governor (engine/thread_governor.py). Without xdist the order is pytest's own.

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

FAST_TIERS = ("unit", "api", "client")
ONE_GROUP_TIERS = ("web",)
# Seconds a group took in `make test` (2 cores), longest first; the others follow.
MEASURED_S = {
    "e2e/test_sampling_real.py": 230,
    "e2e/test_openai_tools.py": 200,
    "e2e/test_template_tools.py": 185,
    "reliability/test_engine_process.py": 160,
    "cluster/test_cluster.py": 160,
    "browser_engine/test_chromium.py": 100,
    "reliability/test_engine_process_wedge.py": 90,
    "fast": 80,
    "e2e/test_json_closing_real.py": 70,
    "e2e/test_resident_models.py": 65,
    "web": 60,
    "reliability/test_disconnects.py": 50,
    "e2e/test_json_mode.py": 50,
    "e2e/test_slot_moves.py": 45,
    "cluster/test_shared_rate_limit.py": 45,
    "e2e/test_batching.py": 40,
    "e2e/test_prefix_cache.py": 35,
    "reliability/test_shutdown.py": 30,
}


def group_of(path: Path) -> str:
    parts = path.relative_to(TESTS).parts
    if len(parts) == 1:
        return "fast"
    if parts[0] in FAST_TIERS:
        return "fast"
    if parts[0] in ONE_GROUP_TIERS:
        return parts[0]
    if parts[0] == "browser_engine" and parts[-1] != "test_chromium.py":
        return "browser_engine"  # fake tabs on one relay server (its conftest)
    return "/".join(parts)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    groups = {item: group_of(Path(str(item.path))) for item in items}
    for item, group in groups.items():
        item.add_marker(pytest.mark.xdist_group(group))
    if hasattr(config, "workerinput"):  # an xdist worker: the work queue takes this order
        items.sort(key=lambda item: -MEASURED_S.get(groups[item], 0))
