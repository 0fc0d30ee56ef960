"""One service under the supervisor (:mod:`branchyard.services.supervisor`): its
process, started in its own process group with its pipes on the supervisor's
selector, its output read into its log, and what its exit means for it
(restarted after a backoff, or left crashed or exited)."""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import time
from dataclasses import dataclass, field
from typing import IO

from branchyard.services.logs import LineSplitter, LogWriter
from branchyard.services.state import ServiceRecord, ServiceSpec, Settings

STABLE_AFTER = 10.0  # a run this long (seconds) resets the count of failures in a row


@dataclass
class Runner:
    spec: ServiceSpec
    log: LogWriter
    record: ServiceRecord = field(default_factory=ServiceRecord)
    proc: subprocess.Popen[bytes] | None = None
    failures: int = 0
    checked: float = 0.0
    splitters: dict[int, tuple[str, LineSplitter]] = field(default_factory=dict)

    def note(self, text: str) -> None:
        self.log.write("supervisor", text)

    def start(self, cwd: str, env: dict[str, str], selector: selectors.BaseSelector) -> None:
        """Start the service's command, its output pipes registered on ``selector``
        (with this runner as their data); a command that cannot start is crashed."""
        import psutil

        spec, rec = self.spec, self.record
        rec.started_at, rec.exit_code, rec.exit_signal = time.time(), None, ""
        rec.port, rec.next_start = spec.port, 0.0
        try:
            proc = subprocess.Popen(spec.argv, cwd=cwd, env=env,
                                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, start_new_session=True)
        except OSError as exc:
            self.note(f"cannot start {' '.join(spec.argv)}: {exc.strerror or exc}")
            rec.state, rec.exit_code, rec.pid = "crashed", 127, 0
            return
        self.proc = proc
        with contextlib.suppress(psutil.Error):
            rec.create_time = psutil.Process(proc.pid).create_time()
        rec.pid, rec.ready = proc.pid, not spec.ready
        rec.state = "starting" if spec.ready else "running"
        for stream, pipe in (("out", proc.stdout), ("err", proc.stderr)):
            assert pipe is not None
            os.set_blocking(pipe.fileno(), False)
            self.splitters[pipe.fileno()] = (stream, LineSplitter())
            selector.register(pipe, selectors.EVENT_READ, self)
        self.note(f"started (pid {proc.pid}): {' '.join(spec.argv)}")

    def signal_group(self, signum: int) -> None:
        """Send ``signum`` to the service's process group (gone already is fine)."""
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signum)

    def read(self, pipe: IO[bytes], final: bool = False) -> bool:
        """Log what the pipe has; False at its end."""
        fd = pipe.fileno()
        stream, splitter = self.splitters.get(fd, ("out", LineSplitter()))
        while True:
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                chunk = None
            except OSError:
                chunk = b""
            if chunk:
                for line in splitter.feed(chunk):
                    self.log.write(stream, line)
                continue
            if chunk == b"" or final:
                for line in splitter.flush():
                    self.log.write(stream, line)
            return chunk is None

    def release(self, selector: selectors.BaseSelector) -> None:
        """Read the last output, end what is left of its process group, close pipes."""
        proc = self.proc
        assert proc is not None
        self.signal_group(signal.SIGTERM)
        for pipe in (proc.stdout, proc.stderr):
            if pipe is None:
                continue
            self.read(pipe, final=True)
            with contextlib.suppress(KeyError, ValueError):
                selector.unregister(pipe)
            self.splitters.pop(pipe.fileno(), None)
            pipe.close()
        self.proc = None

    def exited(self, code: int, settings: Settings) -> None:
        """Record an exit with ``code`` (negative: killed by that signal), and
        schedule the restart ``restart = "on-failure"`` asks for, with backoff."""
        rec = self.record
        rec.exit_code = code if code >= 0 else 128 - code
        rec.exit_signal = signal.Signals(-code).name if code < 0 else ""
        rec.ready, rec.pid = False, 0
        how = f"killed by {rec.exit_signal}" if code < 0 else f"exited with code {code}"
        if time.time() - rec.started_at >= STABLE_AFTER:
            self.failures = 0
        if code != 0 and self.spec.restart == "on-failure" \
                and self.failures < settings.max_restarts:
            delay = min(settings.backoff * 2 ** self.failures, settings.backoff_max)
            self.failures += 1
            rec.restarts += 1
            rec.state, rec.next_start = "restarting", time.time() + delay
            self.note(f"{how}; restarting in {delay:g} s (attempt {self.failures} of "
                      f"{settings.max_restarts})")
        else:
            rec.state = "crashed" if code != 0 else "exited"
            gave_up = code != 0 and self.spec.restart == "on-failure"
            self.note(how + (f"; not restarted after {self.failures} attempt(s) "
                             "(`branchyard restart` starts it again)" if gave_up else ""))
