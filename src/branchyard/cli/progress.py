"""Drawing progress: the concrete :class:`branchyard.core.events.Reporter` s.

- :class:`RichReporter` on a terminal: a live line with a spinner, the phase,
  its elapsed time, a bar when the phase reports progress, and the last line of
  hook output; finished phases stay above it with their times.
- :class:`PlainReporter` otherwise: timestamped lines
  (``[  0.42s] databases: cloning app…``).
- :class:`JsonReporter` with ``--json``: one JSON object per line on stderr
  (stdout carries the command's one JSON document).

Plain and JSON reporters run a heartbeat thread during a phase, so that nothing
stays silent for more than ``heartbeat`` seconds (the rich display redraws
itself). :func:`make_reporter` picks one; :func:`summary` says where the time went.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, TextIO

from branchyard.core.events import PhaseTime, Reporter

Clock = Callable[[], float]
HEARTBEAT = 1.5  # seconds of silence before "still <phase>…"
PLAIN_PROGRESS_EVERY = 1.0  # plain/JSON: at most one progress line per this many seconds
JSON_PROGRESS_EVERY = 0.2


@dataclass
class _Phase:
    name: str
    started: float
    done: float = 0.0
    total: float = 0.0
    unit: str = ""
    last_output: str = ""
    progress_shown: float = -1e9


def make_reporter(as_json: bool, stream: TextIO | None = None,
                  is_tty: bool | None = None) -> Reporter:
    """The reporter a command should use: JSON lines with ``--json``, rich on a
    terminal, plain lines otherwise. ``is_tty`` overrides terminal detection."""
    out = stream if stream is not None else sys.stderr
    if as_json:
        return JsonReporter(out)
    tty = _isatty(out) if is_tty is None else is_tty
    if tty and os.environ.get("TERM") != "dumb":
        return RichReporter(out)
    return PlainReporter(out)


def _isatty(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def summary(times: Sequence[PhaseTime]) -> str:
    """Where the time went, one line per phase, with a bar for its share."""
    if not times:
        return "no phases ran"
    total = sum(t.seconds for t in times)
    width = max(len(t.name) for t in times)
    lines = [f"where the time went ({_secs(total)} in all):"]
    for t in times:
        share = t.seconds / total if total > 0 else 0.0
        bar = "█" * max(1 if t.seconds > 0 else 0, round(share * 24))
        lines.append(f"  {t.name:<{width}}  {_secs(t.seconds):>8}  {share:4.0%}  {bar}")
    return "\n".join(lines)


def _secs(seconds: float) -> str:
    return f"{seconds:.2f} s" if seconds < 60 else f"{int(seconds // 60)} min {seconds % 60:.0f} s"


def _amount(phase: _Phase) -> str:
    unit = f" {phase.unit}" if phase.unit else ""
    if phase.total > 0:
        return f"{phase.done:,.0f}/{phase.total:,.0f}{unit} ({phase.done / phase.total:.0%})"
    return f"{phase.done:,.0f}{unit}" if phase.done else ""


class _Heartbeat:
    """Calls ``beat`` every ``period`` seconds on a daemon thread until stopped."""

    def __init__(self, beat: Callable[[], None], period: float) -> None:
        self._beat = beat
        self._period = period
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="branchyard-heartbeat",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join(timeout=2.0)
        self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self._period):
            self._beat()


class _LineReporter:
    """What plain and JSON reporters share: the phase stack, the clock, the
    lock around writes, and the heartbeat."""

    def __init__(self, stream: TextIO, clock: Clock = time.monotonic,
                 heartbeat: float = HEARTBEAT) -> None:
        self.stream = stream
        self.clock = clock
        self.heartbeat_after = heartbeat
        self._t0 = clock()
        self._last_write = self._t0
        self._stack: list[_Phase] = []
        self._lock = threading.RLock()
        self._beat = _Heartbeat(self.heartbeat, period=max(0.05, heartbeat / 4))

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        with self._lock:
            entry = _Phase(name, self.clock())
            self._stack.append(entry)
            self._phase_started(entry)
        self._beat.start()
        ok = False
        try:
            yield
            ok = True
        finally:
            self._end(entry, ok)

    def _end(self, entry: _Phase, ok: bool) -> None:
        with self._lock:
            self._stack.remove(entry)
            self._phase_ended(entry, ok, self.clock() - entry.started)
            idle = not self._stack
        if idle:
            self._beat.stop()

    def progress(self, done: float, total: float, unit: str = "") -> None:
        with self._lock:
            if not self._stack:
                return
            phase = self._stack[-1]
            phase.done, phase.total, phase.unit = done, total, unit
            finished = total > 0 and done >= total
            if finished or self.clock() - phase.progress_shown >= self._progress_every:
                phase.progress_shown = self.clock()
                self._progress_changed(phase)

    def heartbeat(self) -> None:
        """Say something if a phase has been silent too long (the thread calls
        this; tests may call it directly with a fake clock)."""
        with self._lock:
            if self._stack and self.clock() - self._last_write >= self.heartbeat_after:
                self._still(self._stack[-1], self.clock() - self._stack[-1].started)

    def close(self) -> None:
        self._beat.stop()

    def _write(self, text: str) -> None:
        with self._lock:
            self.stream.write(text + "\n")
            self.stream.flush()
            self._last_write = self.clock()

    def _t(self) -> float:
        return self.clock() - self._t0

    def _current(self) -> str:
        return self._stack[-1].name if self._stack else ""

    _progress_every = PLAIN_PROGRESS_EVERY

    def _phase_started(self, phase: _Phase) -> None:
        raise NotImplementedError

    def _phase_ended(self, phase: _Phase, ok: bool, seconds: float) -> None:
        raise NotImplementedError

    def _progress_changed(self, phase: _Phase) -> None:
        raise NotImplementedError

    def _still(self, phase: _Phase, elapsed: float) -> None:
        raise NotImplementedError


class PlainReporter(_LineReporter):
    """Timestamped lines for logs, CI and pipes."""

    def _line(self, text: str) -> None:
        self._write(f"[{self._t():6.2f}s] {text}")

    def _prefix(self) -> str:
        return f"{self._current()}: " if self._stack else ""

    def message(self, text: str) -> None:
        self._line(self._prefix() + text)

    def output(self, line: str) -> None:
        with self._lock:
            if self._stack:
                self._stack[-1].last_output = line
            self._line(f"{self._current() or 'output'} | {line}")

    def _phase_started(self, phase: _Phase) -> None:
        self._line(f"{phase.name}…")

    def _phase_ended(self, phase: _Phase, ok: bool, seconds: float) -> None:
        verdict = "done in" if ok else "failed after"
        self._line(f"{phase.name} {verdict} {_secs(seconds)}")

    def _progress_changed(self, phase: _Phase) -> None:
        self._line(f"{phase.name}: {_amount(phase)}")

    def _still(self, phase: _Phase, elapsed: float) -> None:
        amount = _amount(phase)
        self._line(f"still {phase.name}… {elapsed:.0f}s" + (f", {amount}" if amount else ""))


class JsonReporter(_LineReporter):
    """One JSON object per line: ``{"event": …, "phase": …, "t": …}``."""

    _progress_every = JSON_PROGRESS_EVERY

    def _event(self, event: str, **fields: Any) -> None:
        doc = {"event": event, "phase": self._current(), "t": round(self._t(), 3), **fields}
        self._write(json.dumps(doc, ensure_ascii=False))

    def message(self, text: str) -> None:
        self._event("message", text=text)

    def output(self, line: str) -> None:
        self._event("output", line=line)

    def _phase_started(self, phase: _Phase) -> None:
        self._event("phase_start")

    def _phase_ended(self, phase: _Phase, ok: bool, seconds: float) -> None:
        self._write(json.dumps({"event": "phase_end", "phase": phase.name,
                                "t": round(self._t(), 3), "seconds": round(seconds, 3),
                                "ok": ok}))

    def _progress_changed(self, phase: _Phase) -> None:
        self._event("progress", done=phase.done, total=phase.total, unit=phase.unit)

    def _still(self, phase: _Phase, elapsed: float) -> None:
        self._event("heartbeat", elapsed=round(elapsed, 3))


class RichReporter:
    """A live display on a terminal (rich is imported only when one is made).

    Lock order: rich's refresh thread holds the Live's lock while it calls
    :meth:`_render`, which takes ours; so ours is only ever held for reading or
    changing the phase state, never while calling into rich.
    """

    def __init__(self, stream: TextIO, clock: Clock = time.monotonic) -> None:
        from rich.console import Console

        self.console = Console(file=stream, force_terminal=True, highlight=False)
        self.clock = clock
        self._stack: list[_Phase] = []
        self._lock = threading.Lock()
        self._live: Any = None  # started and stopped by the thread running the phases
        self._spinner: Any = None  # one spinner, so that it keeps turning between redraws

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        entry = _Phase(name, self.clock())
        with self._lock:
            self._stack.append(entry)
        self._start_live()
        ok = False
        try:
            yield
            ok = True
        finally:
            self._end(entry, ok)

    def _end(self, entry: _Phase, ok: bool) -> None:
        seconds = self.clock() - entry.started
        mark = "[green]✓[/]" if ok else "[red]✗[/]"
        with self._lock:
            self._stack.remove(entry)
            idle = not self._stack
        if self._live is not None:
            self._live.refresh()  # drop the finished phase from the live line first
        self.console.print(f"{mark} {_escape(entry.name)} [dim]{_secs(seconds)}[/]")
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
                     f"[dim]{elapsed:.1f}s[/]", bar, _escape(_amount(phase)))
        if phase.last_output:
            grid.add_row("", f"[dim]{_escape(phase.last_output[:100])}[/]")
        return grid


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)
