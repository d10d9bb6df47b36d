"""Runs docs/cluster.md's one-machine commands exactly as written, measures them, and
checks that the documented teardown leaves nothing running or listening.

    .venv/bin/python bench/cluster_docs.py               # the documented commands
    .venv/bin/python bench/cluster_docs.py --dashboard   # the same, with Ray's dashboard

The commands are the ```bash blocks after `<!-- docs-run: NAME -->` markers in
docs/cluster.md (redis, ray, deploy, check, teardown), so the docs cannot drift from what
is measured. `ray` runs in its own session (its "terminal"); the documented Ctrl+C is a
SIGINT to that session's process group. check and teardown run after the deploy block's
`export` lines, as typed in the same terminal. `--dashboard` runs the variant the docs describe
for `serve deploy`: the ray block without `--include-dashboard=false`, `serve deploy`
instead of `serve run --address ... --non-blocking`, and `serve status` after the check.

It uses the documented fixed ports (6379, 6380, 3000) and refuses to start when one is
taken. It stops only what it started: the Ray session by its process group, Redis by the
documented `redis-cli shutdown`; leftovers are reported, never killed by name.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "cluster.md"
BLOCK = re.compile(r"<!-- docs-run: (\w+) -->\s*\n```bash\n(.*?)```", re.S)
PORTS = (6379, 6380, 3000)
API = "http://127.0.0.1:3000"
REDIS_PIDFILE = Path("/tmp/browser-llm-redis.pid")
RAY_ADDRESS_FILE = Path("/tmp/ray/ray_current_cluster")  # written by `ray start`


def other_ray_running() -> bool:
    """A Ray already on this machine: while ours runs, its `ray.init()` users (without an
    address) would connect to ours, so this script runs only without one."""
    return any(proc.info["name"] == "gcs_server" for proc in psutil.process_iter(["name"]))


def doc_blocks() -> dict[str, str]:
    blocks = dict(BLOCK.findall(DOC.read_text()))
    missing = {"redis", "ray", "deploy", "check", "teardown"} - set(blocks)
    if missing:
        sys.exit(f"docs/cluster.md has no docs-run block for {sorted(missing)}")
    return blocks


def listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def bash(script: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    start = time.monotonic()
    done = subprocess.run(
        ["bash", "-ec", script], cwd=ROOT, capture_output=True, text=True, timeout=900
    )
    return time.monotonic() - start, done


def _terminal() -> None:
    # A terminal's foreground job gets Ctrl+C; a job started from a script may inherit an
    # ignored SIGINT, which Python (and so `ray start`) then keeps.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _listening_addrs() -> set[tuple[int | None, str, int]]:
    """(pid, ip, port) of every listening TCP socket on the machine."""
    found = set()
    for conn in psutil.net_connections(kind="inet"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr:
            ip, port = conn.laddr[0], conn.laddr[1]
            found.add((conn.pid, str(ip), int(port)))
    return found


class Tracker:
    """Every process that descends from the Ray session (and Redis), and what it listens
    on, sampled while the cluster runs: what the teardown must have stopped."""

    def __init__(self, root_pid: int) -> None:
        self.root_pid = root_pid
        self.pids: dict[int, str] = {}
        self.ports: set[tuple[str, int]] = set()

    def sample(self, extra: list[int]) -> list[psutil.Process]:
        try:
            procs = [psutil.Process(self.root_pid)]
            procs += procs[0].children(recursive=True)
        except psutil.NoSuchProcess:
            procs = []
        procs += [psutil.Process(pid) for pid in extra if psutil.pid_exists(pid)]
        for proc in procs:
            try:
                self.pids[proc.pid] = " ".join(proc.cmdline())[:90] or proc.name()
            except psutil.Error:
                continue
        for pid, ip, port in _listening_addrs():
            if pid in self.pids:
                self.ports.add((ip, port))
        return procs

    def leftovers(self) -> tuple[list[str], list[tuple[str, int]]]:
        alive = [f"{pid} {cmd}" for pid, cmd in self.pids.items() if psutil.pid_exists(pid)]
        held = [(ip, port) for _, ip, port in _listening_addrs() if (ip, port) in self.ports]
        return alive, held


def memory(procs: list[psutil.Process]) -> dict[str, float]:
    rss = pss = 0
    count = 0
    dashboard_pss = 0
    for proc in procs:
        try:
            info = proc.memory_full_info()
            cmd = " ".join(proc.cmdline())
        except psutil.Error:
            continue
        count += 1
        rss += info.rss
        pss += info.pss
        if "dashboard" in cmd.lower():
            dashboard_pss += info.pss
    gib = float(2**30)
    return {
        "processes": count,
        "rss_gib": round(rss / gib, 2),
        "pss_gib": round(pss / gib, 2),
        "dashboard_pss_gib": round(dashboard_pss / gib, 2),
    }


def ready_replicas(api: httpx.Client) -> list[dict[str, object]]:
    try:
        data = api.get("/api/v1/status").json()["data"]
    except (httpx.HTTPError, ValueError, KeyError):
        return []
    replicas: list[dict[str, object]] = data["engine"]["cluster"]["replicas"]
    return [r for r in replicas if r["state"] == "ready"]


def wait(check: object, timeout_s: float, what: str) -> float:
    start = time.monotonic()
    while not check():  # type: ignore[operator]
        if time.monotonic() - start > timeout_s:
            raise RuntimeError(f"timed out: {what}")
        time.sleep(0.2)
    return time.monotonic() - start


def run(blocks: dict[str, str], figures: dict[str, object]) -> Tracker | None:
    elapsed, done = bash(blocks["redis"])
    if done.returncode:
        sys.exit(f"redis block failed: {done.stderr}")
    figures["redis_start_s"] = round(elapsed, 1)
    wait(lambda: REDIS_PIDFILE.exists(), 10, "Redis's pid file")
    redis_pid = int(REDIS_PIDFILE.read_text().strip())
    log = open("/tmp/browser-llm-ray-start.log", "w")  # noqa: SIM115 (closed at the end)
    start = time.monotonic()
    ray = subprocess.Popen(
        ["bash", "-ec", blocks["ray"]],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=_terminal,
    )
    tracker = Tracker(ray.pid)
    try:
        log_text = Path(log.name)
        wait(lambda: "Ray runtime started" in log_text.read_text(), 300, "ray start")
        figures["ray_start_s"] = round(time.monotonic() - start, 1)
        elapsed, done = bash(blocks["deploy"])
        if done.returncode:
            raise RuntimeError(f"deploy block failed: {done.stderr[-2000:]}")
        figures["deploy_until_health_s"] = round(elapsed, 1)
        with httpx.Client(base_url=API, timeout=60) as api:
            more = wait(lambda: len(ready_replicas(api)) == 2, 300, "2 ready replicas")
            figures["deploy_until_2_ready_s"] = round(elapsed + more, 1)
            _, done = bash(blocks["check"])
            if done.returncode or done.stdout.count('"success":true') != 2:
                raise RuntimeError(f"check block failed: {done.stdout[:500]} {done.stderr}")
            if "serve status" in blocks["check"]:
                figures["serve_status_healthy"] = done.stdout.count("HEALTHY")
            time.sleep(3)  # let start-up settle before reading memory
            # Not the shell that runs the ray block (a terminal's shell, not started here).
            procs = [p for p in tracker.sample([redis_pid]) if p.pid != ray.pid]
            figures.update(memory(procs))
            figures["replacement_s"] = replace_one(api, tracker, redis_pid)
    finally:
        tracker.sample([redis_pid])
        start = time.monotonic()
        os.killpg(ray.pid, signal.SIGINT)  # the documented Ctrl+C
        try:
            ray.wait(timeout=120)
        except subprocess.TimeoutExpired:
            print("ray start did not stop within 120 s of Ctrl+C", file=sys.stderr)
        figures["ray_stop_s"] = round(time.monotonic() - start, 1)
        elapsed, done = bash(blocks["teardown"])
        figures["redis_stop_s"] = round(elapsed, 1)
        if done.returncode:
            print(f"teardown block failed: {done.stderr}", file=sys.stderr)
        log.close()
    return tracker


def replace_one(api: httpx.Client, tracker: Tracker, redis_pid: int) -> float:
    """Kills one engine replica by pid; seconds until 2 replicas are ready again with a new
    one among them and a generation answers."""
    before = ready_replicas(api)
    victim = before[0]
    os.kill(int(str(victim["pid"])), signal.SIGKILL)
    start = time.monotonic()
    old = {r["replica"] for r in before}

    def back() -> bool:
        ready = ready_replicas(api)
        return len(ready) == 2 and any(r["replica"] not in old for r in ready)

    wait(back, 300, "the replacement replica")
    resp = api.post("/api/v1/generate", json={"prompt": "Back?", "max_tokens": 4})
    resp.raise_for_status()
    elapsed = round(time.monotonic() - start, 1)
    tracker.sample([redis_pid])
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dashboard", action="store_true", help="keep Ray's dashboard")
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    blocks = doc_blocks()
    # check and teardown are typed in the deploy block's terminal: its exports still hold.
    lines = blocks["deploy"].splitlines()
    exports = "".join(f"{line}\n" for line in lines if line.startswith("export "))
    blocks["check"] = exports + blocks["check"]
    blocks["teardown"] = exports + blocks["teardown"]
    if args.dashboard:  # the variant the docs describe for `serve deploy` / `serve status`
        blocks["ray"] = blocks["ray"].replace(" --include-dashboard=false", "")
        run_cmd = "serve run --address 127.0.0.1:6380 --non-blocking"
        if run_cmd not in blocks["deploy"]:
            sys.exit(f"the deploy block no longer says {run_cmd!r}: update this script")
        blocks["deploy"] = blocks["deploy"].replace(run_cmd, "serve deploy")
        blocks["check"] += "\n.venv/bin/serve status\n"
    results: list[dict[str, object]] = []
    failed = False
    for n in range(args.runs):
        taken = [port for port in (*PORTS, 8265) if listening(port)]
        if taken:
            sys.exit(f"ports {taken} are taken: the documented commands need them free")
        if other_ray_running():
            sys.exit("another Ray runs on this machine (a gcs_server): run this alone")
        figures: dict[str, object] = {"run": n + 1, "load_average": os.getloadavg()[0]}
        tracker = run(blocks, figures)
        time.sleep(2)
        alive, held = tracker.leftovers() if tracker else ([], [])
        still = [port for port in PORTS if listening(port)]
        figures["address_file_left"] = RAY_ADDRESS_FILE.exists()
        figures["left_running"] = len(alive)
        figures["left_listening"] = sorted({*held, *(("127.0.0.1", p) for p in still)})
        for line in alive:
            print(f"left running after teardown: {line}", file=sys.stderr)
        failed = failed or bool(alive or held or still or figures["address_file_left"])
        results.append(figures)
        print(figures, flush=True)
    if len(results) > 1:
        for key in ("ray_start_s", "deploy_until_2_ready_s", "replacement_s", "ray_stop_s"):
            values = [float(str(r[key])) for r in results if key in r]
            print(f"median {key}: {statistics.median(values):.1f} s ({values})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
