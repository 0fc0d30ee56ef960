"""How long-running work reports what it is doing.

The API takes a :class:`Reporter`; the CLI passes one that draws (rich on a
terminal, plain lines otherwise, JSON lines with ``--json``). Library code
only ever calls these methods; it never prints.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Protocol


class Reporter(Protocol):
    def phase(self, name: str) -> AbstractContextManager[None]:
        """A named phase (worktree, files, env, ports, databases, deps, hooks)."""
        ...

    def message(self, text: str) -> None:
        """A one-line status message inside the current phase."""
        ...

    def progress(self, done: float, total: float, unit: str = "") -> None:
        """Progress of the current phase (bytes, files…); total 0 = unknown."""
        ...

    def output(self, line: str) -> None:
        """A line of output from a hook or tool the phase runs."""
        ...


class NullReporter:
    """Reports nothing (library default)."""

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        yield

    def message(self, text: str) -> None:
        pass

    def progress(self, done: float, total: float, unit: str = "") -> None:
        pass

    def output(self, line: str) -> None:
        pass


@dataclass(frozen=True)
class PhaseTime:
    name: str
    seconds: float


class PhaseTimer:
    """Wraps a reporter and records how long each phase took."""

    def __init__(self, inner: Reporter) -> None:
        self.inner = inner
        self.times: list[PhaseTime] = []

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            with self.inner.phase(name):
                yield
        finally:
            self.times.append(PhaseTime(name, time.perf_counter() - start))

    def message(self, text: str) -> None:
        self.inner.message(text)

    def progress(self, done: float, total: float, unit: str = "") -> None:
        self.inner.progress(done, total, unit)

    def output(self, line: str) -> None:
        self.inner.output(line)
