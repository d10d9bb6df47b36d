"""How an engine process ended, in words a user can act on, and when to stop restarting."""

from __future__ import annotations

import signal
from dataclasses import dataclass

from browser_llm.core.errors import ModelLoadFailedError

__all__ = ["ChildExit", "RestartPolicy", "crash_loop_error"]

_MEANING = {
    "SIGSEGV": "segmentation fault",
    "SIGILL": "illegal instruction",
    "SIGABRT": "aborted, e.g. a failed GGML_ASSERT",
    "SIGKILL": "killed, e.g. by the kernel's out-of-memory killer",
    "SIGBUS": "bus error",
    "SIGFPE": "arithmetic fault",
}

_HINT = {
    "SIGILL": (
        "this llama.cpp build uses a CPU instruction this machine cannot run "
        "(on Intel CPUs with AMX: ggml's AMX kernels). Rebuild it on this machine: "
        "rm -rf .venv && make serve (the Makefile leaves the AMX kernels out)"
    ),
    "SIGKILL": "the machine may be out of memory: try a smaller model or context size",
}

_WEDGED_HINT = (
    "a decode step or model load never returned; BROWSER_LLM_ENGINE_WEDGED_S and "
    "BROWSER_LLM_ENGINE_LOAD_WEDGED_S set how long the server waits"
)


@dataclass(frozen=True)
class ChildExit:
    """A finished engine process: its return code as subprocess reports it, and whether
    the server killed it for being wedged (engine/process/wedge.py)."""

    returncode: int
    wedged_s: float | None = None  # seconds without progress when it was killed

    @property
    def signal_name(self) -> str | None:
        if self.returncode >= 0:
            return None
        try:
            return signal.Signals(-self.returncode).name
        except ValueError:
            return f"signal {-self.returncode}"

    @property
    def description(self) -> str:
        if self.wedged_s is not None:
            return f"wedged: no progress for {self.wedged_s:.0f} s with work pending; killed"
        name = self.signal_name
        if name is None:
            return f"exited with code {self.returncode}"
        meaning = _MEANING.get(name)
        return f"{name}: {meaning}" if meaning else name

    @property
    def hint(self) -> str | None:
        if self.wedged_s is not None:
            return _WEDGED_HINT
        name = self.signal_name
        return _HINT.get(name) if name is not None else None

    @property
    def looks_like_memory(self) -> bool:
        """SIGKILL is the out-of-memory killer's signal; counted in health.memory_errors."""
        return self.signal_name == "SIGKILL" and self.wedged_s is None

    def details(self) -> dict[str, object]:
        out: dict[str, object] = {"reason": "engine_died", "exit": self.description}
        if self.wedged_s is not None:
            out["reason"] = "engine_wedged"
            out["wedged_s"] = round(self.wedged_s, 1)
        if self.signal_name is not None:
            out["signal"] = self.signal_name
        else:
            out["exit_code"] = self.returncode
        if self.hint is not None:
            out["hint"] = self.hint
        return out


@dataclass
class RestartPolicy:
    """Back-off between restarts, and the crash loop that ends them.

    `streak` counts deaths since the engine last produced a token for a request; the
    start-up self-check and the first decode both fall inside it. After `max_streak`
    deaths in a row the model is marked failed instead of restarted again.
    """

    max_streak: int = 3
    first_delay_s: float = 0.25
    max_delay_s: float = 8.0
    streak: int = 0

    def died(self) -> None:
        self.streak += 1

    def progressed(self) -> None:
        self.streak = 0

    @property
    def give_up(self) -> bool:
        return self.streak >= self.max_streak

    @property
    def delay_s(self) -> float:
        if self.streak == 0:
            return 0.0
        return float(min(self.max_delay_s, self.first_delay_s * 2 ** (self.streak - 1)))


def crash_loop_error(
    model_id: str | None, cause: str, exit_: ChildExit | None
) -> ModelLoadFailedError:
    """What requests get once restarts stop: the model (or the process itself) failed."""
    text = (
        f"model '{model_id}' was marked failed: its engine process {cause}"
        if model_id is not None
        else f"the engine process cannot run: it {cause}"
    )
    if exit_ is not None and exit_.hint:
        text += f". {exit_.hint}"
    details: dict[str, object] = {"model_id": model_id}
    if exit_ is not None:
        details.update(exit_.details())
    details["reason"] = "engine_crash_loop"
    return ModelLoadFailedError(text, details)
