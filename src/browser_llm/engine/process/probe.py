"""Load a model file in a child process first, so a llama.cpp crash cannot kill the server.

A crafted GGUF can pass the header check and still make llama.cpp abort or
segfault while it reads the weights. The first load of a file that did not
come from a pinned package runs `python -m browser_llm.engine.process.probe PATH` in a
child: it loads the weights (mmap, CPU only, no context) and exits. A signal,
a non-zero exit or a timeout means the server never loads that file.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from dataclasses import dataclass

from browser_llm.core.errors import ModelLoadFailedError

__all__ = ["ProbeResult", "probe_model"]

_OUTPUT_LIMIT = 64 * 1024


@dataclass(frozen=True)
class ProbeResult:
    n_params: int
    has_chat_template: bool


async def probe_model(
    path: str, timeout_s: float = 300.0, command: list[str] | None = None
) -> ProbeResult:
    """Runs the probe child; raises ModelLoadFailedError (reason probe_*) on any failure.

    `command` replaces the child command line (tests use it to simulate a crash).
    """
    argv = command or [sys.executable, "-m", "browser_llm.engine.process.probe", path]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env=env,
        start_new_session=True,  # its own process group, killed by id on timeout
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout_s)
    except (TimeoutError, asyncio.CancelledError):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()
        raise ModelLoadFailedError(
            "llama.cpp did not finish loading the model in the probe process",
            {"reason": "probe_timeout", "timeout_s": timeout_s},
        ) from None
    code = proc.returncode or 0
    if code < 0:
        name = signal.Signals(-code).name if -code in signal.valid_signals() else str(-code)
        raise ModelLoadFailedError(
            f"llama.cpp crashed ({name}) loading this file in the probe process; "
            "the server did not load it",
            {"reason": "probe_crashed", "signal": name},
        )
    if code != 0:
        raise ModelLoadFailedError(
            "llama.cpp could not load this file (checked in a separate process)",
            {"reason": "probe_rejected", "exit_code": code},
        )
    try:
        data = json.loads(out[:_OUTPUT_LIMIT].decode("utf-8").strip().splitlines()[-1])
        return ProbeResult(int(data["n_params"]), bool(data["has_chat_template"]))
    except (ValueError, KeyError, IndexError) as exc:
        raise ModelLoadFailedError(
            "the probe process gave no result", {"reason": "probe_rejected"}
        ) from exc


def _child(path: str) -> int:
    import llama_cpp

    quiet = llama_cpp.llama_log_callback(lambda _level, _text, _data: None)
    llama_cpp.llama_log_set(quiet, None)  # the child's stderr is discarded anyway
    llama_cpp.llama_backend_init()
    params = llama_cpp.llama_model_default_params()
    params.n_gpu_layers = 0
    model = llama_cpp.llama_model_load_from_file(path.encode(), params)
    if not model:
        return 3
    template = llama_cpp.llama_model_chat_template(model, None)
    result = {
        "n_params": int(llama_cpp.llama_model_n_params(model)),
        "has_chat_template": bool(template),
    }
    llama_cpp.llama_model_free(model)
    # The parent reads this one line from the child's stdout.
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1]))
