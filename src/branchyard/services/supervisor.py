"""The per-worktree supervisor: ``python -m branchyard.services.supervisor DIR``.

It detaches (double fork, own session: no terminal's hang-up reaches it), holds
``supervisor.lock`` for its life (one supervisor per worktree), runs every service
of ``plan.json`` in its own process group with the worktree as its directory (so
`stop`/`down` count it and its services as the worktree's processes), writes
their output to ``logs/`` and their state to ``state.json``, restarts what fails
(exponential backoff, bounded), and applies ``on_env_change`` when a watched env
file changes (checked once a second, one ``stat`` per file). SIGUSR1 re-reads the
plan; SIGTERM stops every service and exits. It exits on its own when nothing is
left to supervise.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import selectors
import signal
import socket
import sys
import time
from pathlib import Path
from types import FrameType
from typing import IO

from branchyard.core.paths import signature
from branchyard.services.logs import LogWriter, log_file
from branchyard.services.readiness import is_ready
from branchyard.services.runner import Runner
from branchyard.services.state import Plan, SupervisorState, log_dir, read_plan, write_state

TICK = 0.2  # the longest the loop sleeps (a child's exit or a signal wakes it at once)
ENV_CHECK = 1.0
READY_EVERY = 0.2


class Supervisor:
    def __init__(self, directory: Path, plan: Plan) -> None:
        import psutil

        self.dir, self.plan = directory, plan
        self.runners: dict[str, Runner] = {}
        self.selector = selectors.DefaultSelector()
        self.stopping = self.reload = False
        me = psutil.Process()
        self.state = SupervisorState(plan.worktree, me.pid, me.create_time(), time.time())
        self.env_sig = signature(plan.watch)
        self.env_checked = time.time()
        self._wake_r, self._wake_w = socket.socketpair()
        for sock in (self._wake_r, self._wake_w):
            sock.setblocking(False)
        self.selector.register(self._wake_r, selectors.EVENT_READ)

    def install_signals(self) -> None:
        signal.set_wakeup_fd(self._wake_w.fileno())
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        signal.signal(signal.SIGUSR1, self._on_reload)
        signal.signal(signal.SIGCHLD, lambda *_: None)  # wakes the loop when a child exits
        # a handler, not SIG_IGN: an ignored signal stays ignored in the services
        signal.signal(signal.SIGHUP, lambda *_: None)

    def _on_stop(self, _signum: int, _frame: FrameType | None) -> None:
        self.stopping = True

    def _on_reload(self, _signum: int, _frame: FrameType | None) -> None:
        self.reload = True

    def run(self) -> None:
        self.apply(self.plan)
        while not self.stopping:
            if self.reload:
                self.reload = False
                plan = read_plan(self.dir)
                if plan is not None:
                    self.apply(plan)
            self.tick()
            if not any(r.proc is not None or r.record.state == "restarting"
                       for r in self.runners.values()):
                break  # nothing left to supervise
            self.wait(TICK)
        self.stop_all("the supervisor was asked to stop" if self.stopping else "")
        self.state.ended = time.time()
        self.save()

    def save(self) -> None:
        self.state.services = {n: r.record for n, r in self.runners.items()}
        write_state(self.dir, self.state)

    def apply(self, plan: Plan) -> None:
        """Bring what runs in line with ``plan``."""
        self.plan = plan
        for spec in plan.services:
            runner = self.runners.get(spec.name)
            if runner is None:
                log = LogWriter(log_file(log_dir(self.dir), spec.name),
                                plan.settings.log_max_bytes, plan.settings.log_files)
                runner = self.runners[spec.name] = Runner(spec, log)
                fresh = spec.want == "running"
            else:
                fresh = spec.token != runner.spec.token and spec.want == "running"
                runner.spec = spec
            self._apply_one(runner, fresh)
        for name in [n for n in self.runners if plan.service(n) is None]:
            self.stop_runners([self.runners[name]], "it was removed from the config")
            self.runners.pop(name).log.close()
        self.state.generation = plan.generation
        self.save()

    def _apply_one(self, runner: Runner, fresh: bool) -> None:
        if runner.spec.want == "stopped":
            if runner.proc is not None:
                self.stop_runners([runner], "`branchyard stop`")
            runner.record.state = "stopped"
            return
        if not fresh:
            return
        if runner.proc is not None:
            self.stop_runners([runner], "`branchyard restart`")
            runner.record.restarts += 1
        runner.failures = 0
        self.spawn(runner)

    def environment(self) -> dict[str, str]:
        """The inherited environment, less what the env files define (the app reads
        those itself, fresh, unless ``env = "all"``), plus the derived variables."""
        from branchyard.envfiles.files import read_env_files

        files = read_env_files(Path(p) for p in self.plan.env_files)
        if self.plan.settings.env_mode == "all":
            return {**os.environ, **files, **self.plan.env}
        base = {k: v for k, v in os.environ.items() if k not in files}
        return {**base, **self.plan.env}

    def spawn(self, runner: Runner) -> None:
        runner.start(self.plan.worktree, self.environment(), self.selector)
        if runner.proc is not None:
            self.save()

    def tick(self) -> None:
        now = time.time()
        for runner in list(self.runners.values()):
            rec = runner.record
            if runner.proc is not None and runner.proc.poll() is not None:
                self.exited(runner)
            elif runner.proc is not None and rec.state == "starting" \
                    and now - runner.checked >= READY_EVERY:
                runner.checked = now
                if is_ready(runner.spec.ready, runner.spec.port):
                    rec.state, rec.ready = "ready", True
                    runner.note(f"ready after {now - rec.started_at:.1f} s "
                                f"({runner.spec.ready} on port {runner.spec.port})")
                    self.save()
            elif rec.state == "restarting" and now >= rec.next_start:
                self.spawn(runner)
        if now - self.env_checked >= ENV_CHECK:
            self.env_checked = now
            self.check_env()

    def exited(self, runner: Runner) -> None:
        assert runner.proc is not None
        code = runner.proc.returncode
        runner.release(self.selector)
        runner.exited(code, self.plan.settings)
        self.save()

    def wait(self, timeout: float) -> None:
        for key, _ in self.selector.select(timeout):
            if key.fileobj is self._wake_r:
                with contextlib.suppress(BlockingIOError):
                    while self._wake_r.recv(4096):
                        pass
                continue
            runner: Runner = key.data
            pipe: IO[bytes] = key.fileobj  # type: ignore[assignment]
            if not runner.read(pipe):
                with contextlib.suppress(KeyError, ValueError):
                    self.selector.unregister(pipe)

    def stop_runners(self, runners: list[Runner], why: str) -> None:
        """SIGTERM to each process group, SIGKILL after the grace period."""
        live = [r for r in runners if r.proc is not None]
        for runner in live:
            runner.signal_group(signal.SIGTERM)
        deadline = time.time() + self.plan.settings.stop_grace
        while time.time() < deadline and any(r.proc and r.proc.poll() is None for r in live):
            self.wait(0.05)
        for runner in live:
            assert runner.proc is not None
            killed = runner.proc.poll() is None
            runner.signal_group(signal.SIGKILL)
            runner.proc.wait()
            runner.release(self.selector)
            rec = runner.record
            rec.state, rec.pid, rec.ready = "stopped", 0, False
            runner.note(f"stopped{' (SIGKILL after the grace period)' if killed else ''}"
                        + (f": {why}" if why else ""))
        for runner in runners:
            if runner.record.state == "restarting":
                runner.record.state = "stopped"

    def stop_all(self, why: str) -> None:
        self.stop_runners(list(self.runners.values()), why)

    def check_env(self) -> None:
        sig = signature(self.plan.watch)
        if sig == self.env_sig:
            return
        changed = [p for p, a, b in zip(self.plan.watch, sig, self.env_sig, strict=True)
                   if a != b]
        self.env_sig = sig
        names = ", ".join(os.path.basename(p) for p in changed)
        for runner in self.runners.values():
            if runner.proc is not None:
                self._env_changed(runner, names)
        self.save()

    def _env_changed(self, runner: Runner, names: str) -> None:
        action = runner.spec.on_env_change
        rec = runner.record
        rec.env_changed_at = time.time()
        if action == "restart":
            runner.note(f"env file changed ({names}): restarting")
            self.stop_runners([runner], "env file changed")
            rec.restarts += 1
            rec.env_action = "restarted"
            self.spawn(runner)
        elif action.startswith("signal:") and runner.proc is not None:
            name = "SIG" + action.removeprefix("signal:").removeprefix("SIG")
            runner.signal_group(getattr(signal, name))
            rec.env_action = f"sent {name}"
            runner.note(f"env file changed ({names}): sent {name}")
        else:
            rec.env_action = "none"
            runner.note(f"env file changed ({names}); not restarted (on_env_change = none)")


def _detach(directory: Path) -> IO[str] | None:
    """Double fork into a new session; return the held lock, or None when another
    supervisor of this worktree holds it."""
    if os.fork() > 0:
        os._exit(0)
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    lock = (directory / "supervisor.lock").open("a")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.close()
        return None
    return lock


def main(argv: list[str]) -> int:
    directory = Path(argv[0])
    lock = _detach(directory)
    if lock is None:
        return 0  # one runs already; the caller signals it to re-read the plan
    plan = read_plan(directory)
    if plan is None:
        sys.stderr.write(f"no readable plan in {directory}\n")
        return 1
    supervisor = Supervisor(directory, plan)
    supervisor.install_signals()
    supervisor.run()
    lock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
