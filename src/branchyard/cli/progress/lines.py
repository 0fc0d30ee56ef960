"""The line reporters: :class:`PlainReporter` (timestamped lines) and
:class:`JsonReporter` (one JSON object per line), with the heartbeat thread that
keeps a phase from staying silent for more than ``heartbeat`` seconds."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

from branchyard.cli.progress.phases import Clock, Phase, PhaseStack, amount, secs

HEARTBEAT = 1.5  # seconds of silence before "still <phase>…"
PLAIN_PROGRESS_EVERY = 1.0  # plain/JSON: at most one progress line per this many seconds
JSON_PROGRESS_EVERY = 0.2


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


class _LineReporter(PhaseStack):
    """What plain and JSON reporters share: the phase stack, the clock, the
    lock around writes, and the heartbeat."""

    def __init__(self, stream: TextIO, clock: Clock = time.monotonic,
                 heartbeat: float = HEARTBEAT) -> None:
        super().__init__(clock, threading.RLock())
        self.stream = stream
        self.heartbeat_after = heartbeat
        self._t0 = clock()
        self._last_write = self._t0
        self._beat = _Heartbeat(self.heartbeat, period=max(0.05, heartbeat / 4))

    def _running(self) -> None:
        self._beat.start()

    def _end(self, entry: Phase, ok: bool) -> None:
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

    def _phase_ended(self, phase: Phase, ok: bool, seconds: float) -> None:
        raise NotImplementedError

    def _progress_changed(self, phase: Phase) -> None:
        raise NotImplementedError

    def _still(self, phase: Phase, elapsed: float) -> None:
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

    def _phase_started(self, phase: Phase) -> None:
        self._line(f"{phase.name}…")

    def _phase_ended(self, phase: Phase, ok: bool, seconds: float) -> None:
        verdict = "done in" if ok else "failed after"
        self._line(f"{phase.name} {verdict} {secs(seconds)}")

    def _progress_changed(self, phase: Phase) -> None:
        self._line(f"{phase.name}: {amount(phase)}")

    def _still(self, phase: Phase, elapsed: float) -> None:
        shown = amount(phase)
        self._line(f"still {phase.name}… {elapsed:.0f}s" + (f", {shown}" if shown else ""))


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

    def _phase_started(self, phase: Phase) -> None:
        self._event("phase_start")

    def _phase_ended(self, phase: Phase, ok: bool, seconds: float) -> None:
        self._write(json.dumps({"event": "phase_end", "phase": phase.name,
                                "t": round(self._t(), 3), "seconds": round(seconds, 3),
                                "ok": ok}))

    def _progress_changed(self, phase: Phase) -> None:
        self._event("progress", done=phase.done, total=phase.total, unit=phase.unit)

    def _still(self, phase: Phase, elapsed: float) -> None:
        self._event("heartbeat", elapsed=round(elapsed, 3))
