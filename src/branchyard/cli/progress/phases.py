"""What every reporter keeps: the phases open now, innermost last, behind a lock,
and how a phase's time and amount read."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any

Clock = Callable[[], float]


@dataclass
class Phase:
    name: str
    started: float
    done: float = 0.0
    total: float = 0.0
    unit: str = ""
    last_output: str = ""
    progress_shown: float = -1e9


class PhaseStack:
    """The open phases and the lock around them. A reporter says what opening a
    phase shows (:meth:`_phase_started`, under the lock), what runs beside open
    phases (:meth:`_running`, outside it: a heartbeat, a live display) and how
    one ends (:meth:`_end`)."""

    def __init__(self, clock: Clock, lock: AbstractContextManager[Any]) -> None:
        self.clock = clock
        self._stack: list[Phase] = []
        self._lock = lock

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        with self._lock:
            entry = Phase(name, self.clock())
            self._stack.append(entry)
            self._phase_started(entry)
        self._running()
        ok = False
        try:
            yield
            ok = True
        finally:
            self._end(entry, ok)

    def _phase_started(self, phase: Phase) -> None:
        pass

    def _running(self) -> None:
        pass

    def _end(self, entry: Phase, ok: bool) -> None:
        raise NotImplementedError


def secs(seconds: float) -> str:
    return f"{seconds:.2f} s" if seconds < 60 else f"{int(seconds // 60)} min {seconds % 60:.0f} s"


def amount(phase: Phase) -> str:
    unit = f" {phase.unit}" if phase.unit else ""
    if phase.total > 0:
        return f"{phase.done:,.0f}/{phase.total:,.0f}{unit} ({phase.done / phase.total:.0%})"
    return f"{phase.done:,.0f}{unit}" if phase.done else ""
