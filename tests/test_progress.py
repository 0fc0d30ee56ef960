from __future__ import annotations

import io
import json
import subprocess
import sys
import threading
import time

import pytest

from branchyard.cli.progress import (
    JsonReporter,
    PlainReporter,
    RichReporter,
    make_reporter,
    summary,
)
from branchyard.core.events import PhaseTime, PhaseTimer


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class TtyStream(io.StringIO):
    def isatty(self) -> bool:
        return True


def _heartbeats_alive() -> bool:
    return any(t.name == "branchyard-heartbeat" for t in threading.enumerate())


def test_make_reporter_picks_by_json_flag_and_terminal() -> None:
    assert isinstance(make_reporter(True, io.StringIO(), is_tty=True), JsonReporter)
    assert isinstance(make_reporter(False, io.StringIO(), is_tty=False), PlainReporter)
    assert isinstance(make_reporter(False, io.StringIO(), is_tty=True), RichReporter)
    assert isinstance(make_reporter(False, TtyStream()), RichReporter)  # detected
    assert isinstance(make_reporter(False, io.StringIO()), PlainReporter)


def test_plain_lines_are_timestamped_and_name_the_phase() -> None:
    clock, out = FakeClock(), io.StringIO()
    reporter = PlainReporter(out, clock=clock, heartbeat=1e9)
    with reporter.phase("databases"):
        clock.now += 0.42
        reporter.message("cloning app…")
        reporter.output("CREATE DATABASE")
        clock.now += 1.0
    assert out.getvalue().splitlines() == [
        "[  0.00s] databases…",
        "[  0.42s] databases: cloning app…",
        "[  0.42s] databases | CREATE DATABASE",
        "[  1.42s] databases done in 1.42 s",
    ]


def test_plain_progress_is_throttled_but_the_end_is_always_shown() -> None:
    clock, out = FakeClock(), io.StringIO()
    reporter = PlainReporter(out, clock=clock, heartbeat=1e9)
    with reporter.phase("deps"):
        for done in range(0, 20_000, 100):
            reporter.progress(done, 20_000, "files")
        clock.now += 1.0
        reporter.progress(15_000, 20_000, "files")
        reporter.progress(20_000, 20_000, "files")
    assert out.getvalue().splitlines()[1:4] == [
        "[  0.00s] deps: 0/20,000 files (0%)",
        "[  1.00s] deps: 15,000/20,000 files (75%)",
        "[  1.00s] deps: 20,000/20,000 files (100%)",
    ]


def test_a_silent_phase_gets_a_heartbeat_and_only_when_silent() -> None:
    clock, out = FakeClock(), io.StringIO()
    reporter = PlainReporter(out, clock=clock, heartbeat=1.5)
    reporter.heartbeat()  # no phase: nothing to say
    with reporter.phase("deps"):
        reporter.progress(3, 10, "files")
        clock.now += 1.0
        reporter.heartbeat()  # 1.0 s of silence: not yet
        clock.now += 11.0
        reporter.heartbeat()
        reporter.heartbeat()  # just said something
    lines = out.getvalue().splitlines()
    assert lines[2] == "[ 12.00s] still deps… 12s, 3/10 files (30%)"
    assert len(lines) == 4  # start, progress, one heartbeat, end


def test_the_heartbeat_thread_speaks_during_a_long_phase_and_stops_after() -> None:
    out = io.StringIO()
    reporter = PlainReporter(out, heartbeat=0.05)
    with reporter.phase("hooks"):
        deadline = time.monotonic() + 10
        while "still hooks…" not in out.getvalue() and time.monotonic() < deadline:
            threading.Event().wait(0.01)
        assert "still hooks…" in out.getvalue()
    assert not _heartbeats_alive()


def test_json_events_are_one_object_per_line_and_say_when_a_phase_failed() -> None:
    clock, out = FakeClock(), io.StringIO()
    reporter = JsonReporter(out, clock=clock, heartbeat=1.5)

    def failing_phase() -> None:
        with reporter.phase("databases"):
            reporter.message("cloning app")
            reporter.progress(1, 4, "MB")
            clock.now += 2.0
            reporter.heartbeat()
            reporter.output("psql: notice")
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        failing_phase()
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    assert events == [
        {"event": "phase_start", "phase": "databases", "t": 0.0},
        {"event": "message", "phase": "databases", "t": 0.0, "text": "cloning app"},
        {"event": "progress", "phase": "databases", "t": 0.0, "done": 1, "total": 4,
         "unit": "MB"},
        {"event": "heartbeat", "phase": "databases", "t": 2.0, "elapsed": 2.0},
        {"event": "output", "phase": "databases", "t": 2.0, "line": "psql: notice"},
        {"event": "phase_end", "phase": "databases", "t": 2.0, "seconds": 2.0, "ok": False},
    ]
    assert not _heartbeats_alive()


def test_rich_shows_each_finished_phase_with_a_mark_and_stops_its_display() -> None:
    out = TtyStream()
    reporter = make_reporter(False, out)
    timer = PhaseTimer(reporter)
    with timer.phase("deps"):
        timer.message("node_modules: reused by hardlink")
        timer.progress(10, 20, "files")
        timer.output("added 3 packages")
    with pytest.raises(ValueError), timer.phase("hooks"):
        raise ValueError("hook failed")
    text = out.getvalue()
    assert "✓\x1b[0m deps" in text and "✗\x1b[0m hooks" in text
    assert "node_modules: reused by hardlink" in text
    assert isinstance(reporter, RichReporter) and reporter._live is None
    assert [t.name for t in timer.times] == ["deps", "hooks"]


def test_summary_says_where_the_time_went() -> None:
    text = summary([PhaseTime("worktree", 0.5), PhaseTime("deps", 1.5),
                    PhaseTime("hooks", 0.0)])
    assert text.splitlines() == [
        "where the time went (2.00 s in all):",
        "  worktree    0.50 s   25%  ██████",
        "  deps        1.50 s   75%  ██████████████████",
        "  hooks       0.00 s    0%  ",
    ]
    assert summary([]) == "no phases ran"
    assert "2 min 5 s" in summary([PhaseTime("databases", 125.0)])


def test_importing_progress_does_not_import_rich() -> None:
    code = "import sys, branchyard.cli.progress; print('rich' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=30)
    assert done.stdout.strip() == "False"


def test_rich_survives_a_busy_phase_while_its_refresh_thread_draws() -> None:
    """Phase ends, messages and progress racing the 8-per-second redraws must
    never deadlock (they take the locks in one order only)."""
    reporter = make_reporter(False, TtyStream(), is_tty=True)

    def busy() -> None:
        end = time.monotonic() + 1.0  # about eight redraws
        while time.monotonic() < end:
            with reporter.phase("outer"), reporter.phase("inner"):
                for i in range(20):
                    reporter.progress(i, 20, "files")
                    reporter.output(f"line {i}")
                reporter.message("done")

    worker = threading.Thread(target=busy, daemon=True)
    worker.start()
    worker.join(timeout=60)
    assert not worker.is_alive()
    assert isinstance(reporter, RichReporter) and reporter._live is None
