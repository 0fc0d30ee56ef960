"""`run`: a command in a worktree with its env, recorded so `stop`/`down` end it."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

from branchyard.api.envcopies import refresh_env_files
from branchyard.api.info import full_env, live_record_for
from branchyard.api.mainworktree import MAIN_SLUG, forget_run, remember_run
from branchyard.context import open_context
from branchyard.core.errors import BranchyardError, UsageError
from branchyard.ledger import Ledger, ProcessRecord


@dataclass(frozen=True)
class RunRequest:
    argv: tuple[str, ...]
    name: str | None = None  # default: the worktree the cwd is in
    port_flag: str | None = None  # None: [ports] inject_flag; "": never
    cwd: Path | None = None


SIGNAL_EXIT_BASE = 128  # a command ended by signal N exits 128 + N, as in a shell

# What the caller does while the command runs, given its process group: the CLI
# passes the signals it receives on; a library caller keeps its own handlers.
SignalScope = Callable[[int], AbstractContextManager[object]]


def run_command(request: RunRequest, notify: Callable[[str], None] | None = None,
                signals: SignalScope = contextlib.nullcontext) -> int:
    """Run ``argv`` in the worktree; returns its exit code (128+N for a signal).
    ``notify`` hears, before the command starts, why its dev URL will not answer."""
    from branchyard.proxy.daemon import url_note

    ctx = open_context(request.cwd)
    record = live_record_for(ctx, request.name)
    refresh_env_files(ctx, record)  # the command may read them on its own
    problem = url_note(ctx.config.proxy) if notify is not None and record.ports else ""
    if problem and notify is not None:
        notify(f"note: {problem}")
    env = {**os.environ, **full_env(ctx, record)}
    flag = ctx.config.ports.inject_flag if request.port_flag is None else request.port_flag
    extra = [flag, str(next(iter(record.ports.values())))] if flag and record.ports else []
    argv = [*request.argv, *extra] if request.argv else run_hook_argv(ctx.config.hooks.run, extra)
    try:
        child = subprocess.Popen(argv, cwd=record.path, env=env, start_new_session=True)
    except FileNotFoundError as exc:
        raise BranchyardError(f"{argv[0]}: command not found",
                              hint="check the command, or run it through a shell: "
                                   "branchyard run -- sh -c '…'") from exc
    _remember(ctx.ledger, record.slug, child.pid, argv)
    try:
        with signals(child.pid):
            code = child.wait()
    except BaseException:  # interrupted while waiting: the command ends with the call
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGTERM)
        raise
    finally:
        _forget(ctx.ledger, record.slug, child.pid)
    return SIGNAL_EXIT_BASE - code if code < 0 else code


def run_hook_argv(command: str, extra: list[str]) -> list[str]:
    """The ``[hooks] run`` command, through the shell so ``$PORT`` in it expands;
    ``extra`` (the port flag) goes after it as words of its own."""
    if not command:
        raise UsageError("no command given and no `[hooks] run` in branchyard.toml",
                         hint="`branchyard run -- COMMAND`, or set `[hooks] run = "
                              "\"npm run dev\"` in branchyard.toml")
    return ["sh", "-c", f'{command} "$@"', "sh", *extra]


def _remember(ledger: Ledger, slug: str, pid: int, argv: list[str]) -> None:
    import psutil

    try:
        created = psutil.Process(pid).create_time()
    except psutil.NoSuchProcess:
        return
    me = psutil.Process()
    run = ProcessRecord(pid, argv, time.time(), pid, created, me.pid, me.create_time())
    with ledger.update() as state:
        rec = state.worktrees.get(slug)
        if rec is not None:
            rec.processes.append(run)
        elif slug == MAIN_SLUG:
            remember_run(state, run)


def _forget(ledger: Ledger, slug: str, pid: int) -> None:
    with ledger.update() as state:
        rec = state.worktrees.get(slug)
        if rec is not None:
            rec.processes = [p for p in rec.processes if p.pid != pid]
        elif slug == MAIN_SLUG:
            forget_run(state, pid)
