"""A server a test starts dies with the test runner, however the runner dies.

A real pytest, in a process of its own, runs one test that starts a server through the
suite's helper (tests/e2e/conftest.py -> tests/processes.py) and then waits. This test
kills that pytest with SIGTERM (what `kill` of a running `make test` sends on), with
SIGKILL, and with SIGKILL while the server's engine process is stopped (SIGSTOP: it cannot
read the end of file on its socket), and checks that the server and its engine process
are gone within a bound."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests import processes

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
GONE_WITHIN_S = 30.0

INNER_TEST = """
import json, os, time
import psutil
from tests import processes
from tests.e2e.conftest import served

def test_hold_a_server(tmp_path):
    with served(tmp_path, BROWSER_LLM_CONTEXT_SIZE="1024") as srv:
        engine = [c.pid for c in psutil.Process(srv.process.pid).children()]
        pids = {"server": srv.process.pid, "engine": engine,
                "watchdog": processes.watchdog_pid()}
        tmp = os.environ["PIDS_FILE"] + ".tmp"
        with open(tmp, "w") as out:
            json.dump(pids, out)
        os.rename(tmp, os.environ["PIDS_FILE"])
        time.sleep(600)
"""


def _alive(pid: int) -> bool:
    """Running and not a zombie (an exited orphan waits for init to reap it)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@pytest.mark.parametrize("how", ["sigterm", "sigkill", "sigkill-engine-stopped"])
def test_servers_die_with_the_test_runner(tmp_path: Path, how: str) -> None:
    test_file = tmp_path / "test_inner.py"
    test_file.write_text(INNER_TEST)
    pids_file = tmp_path / "pids.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST")}
    env |= {"PYTHONPATH": str(REPO), "PIDS_FILE": str(pids_file)}
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts="]
    with (tmp_path / "runner.log").open("wb") as log:
        # The runner itself through the helper too: if this test dies, it goes as well.
        runner = processes.spawn(
            [*argv, "--rootdir", str(tmp_path), str(test_file)],
            cwd=tmp_path,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 180
        while not pids_file.exists():
            assert runner.poll() is None, (tmp_path / "runner.log").read_text()
            assert time.monotonic() < deadline, "the inner server did not start"
            time.sleep(0.1)
        pids = json.loads(pids_file.read_text())
        watched = [pids["server"], *pids["engine"]]
        assert len(pids["engine"]) == 1, pids  # the server's engine process
        assert pids["watchdog"], pids
        assert all(_alive(pid) for pid in watched), pids
        if how == "sigkill-engine-stopped":
            os.kill(pids["engine"][0], signal.SIGSTOP)
        runner.send_signal(signal.SIGTERM if how == "sigterm" else signal.SIGKILL)
        runner.wait(timeout=30)
        deadline = time.monotonic() + GONE_WITHIN_S
        while any(_alive(pid) for pid in watched) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = [pid for pid in watched if _alive(pid)]
        assert not left, f"{left} outlived the test runner ({how}); pids {pids}"
        while _alive(pids["watchdog"]) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _alive(pids["watchdog"]), "the watchdog outlived its runner"
    finally:
        processes.stop(runner, timeout=10)  # the whole group, whatever happened above
        if pids_file.exists():  # and what a failing watchdog left behind
            server = json.loads(pids_file.read_text())["server"]
            if _alive(server):
                os.killpg(server, signal.SIGKILL)
