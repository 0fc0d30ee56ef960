"""The reporter on a terminal: a live line with a spinner, the phase, its elapsed
time, a bar when the phase reports progress, and the last line of hook output;
finished phases stay above it with their times."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from typing import Any, TextIO

from branchyard.cli.progress.phases import Clock, Phase, PhaseStack, amount, secs


class RichReporter(PhaseStack):
    """A live display on a terminal (rich is imported only when one is made).

    Lock order: rich's refresh thread holds the Live's lock while it calls
    :meth:`_render`, which takes ours; so ours is only ever held for reading or
    changing the phase state, never while calling into rich.
    """

    def __init__(self, stream: TextIO, clock: Clock = time.monotonic) -> None:
        from rich.console import Console

        super().__init__(clock, threading.Lock())
        self.console = Console(file=stream, force_terminal=True, highlight=False)
        self._live: Any = None  # started and stopped by the thread running the phases
        self._spinner: Any = None  # one spinner, so that it keeps turning between redraws

    def _running(self) -> None:
        self._start_live()

    def _end(self, entry: Phase, ok: bool) -> None:
        seconds = self.clock() - entry.started
        mark = "[green]✓[/]" if ok else "[red]✗[/]"
        with self._lock:
            self._stack.remove(entry)
            idle = not self._stack
        if self._live is not None:
            self._live.refresh()  # drop the finished phase from the live line first
        self.console.print(f"{mark} {_escape(entry.name)} [dim]{secs(seconds)}[/]")
        if idle:
            self.close()

    def message(self, text: str) -> None:
        with self._lock:
            prefix = f"{self._stack[-1].name}: " if self._stack else ""
        self.console.print(f"  [dim]{_escape(prefix + text)}[/]")

    def progress(self, done: float, total: float, unit: str = "") -> None:
        with self._lock:
            if self._stack:
                phase = self._stack[-1]
                phase.done, phase.total, phase.unit = done, total, unit

    def output(self, line: str) -> None:
        with self._lock:
            if self._stack:
                self._stack[-1].last_output = line

    def close(self) -> None:
        live, self._live = self._live, None
        if live is not None:
            live.stop()

    def _start_live(self) -> None:
        if self._live is not None:
            return
        from rich.live import Live
        from rich.spinner import Spinner

        self._spinner = self._spinner or Spinner("dots")
        self._live = Live(console=self.console, get_renderable=self._render,
                          refresh_per_second=8, transient=True,
                          redirect_stdout=False, redirect_stderr=False)
        self._live.start()

    def _render(self) -> Any:
        from rich.progress_bar import ProgressBar
        from rich.table import Table

        with self._lock:
            phase = replace(self._stack[-1]) if self._stack else None
        grid = Table.grid(padding=(0, 1))
        if phase is None:
            return grid
        elapsed = self.clock() - phase.started
        bar: Any = (ProgressBar(total=phase.total, completed=phase.done, width=30)
                    if phase.total > 0 else "")
        grid.add_row(self._spinner, f"[bold]{_escape(phase.name)}[/]",
                     f"[dim]{elapsed:.1f}s[/]", bar, _escape(amount(phase)))
        if phase.last_output:
            grid.add_row("", f"[dim]{_escape(phase.last_output[:100])}[/]")
        return grid


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)
