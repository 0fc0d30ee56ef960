"""Running external commands (finding and stopping a worktree's processes is
:mod:`branchyard.system.processes`).

Every subprocess in branchyard goes through :func:`run` (argv lists, a timeout,
captured output) or :func:`run_hook` (user-written shell strings, streamed).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from branchyard.core.errors import CommandError, CommandTimeoutError, HookError

DEFAULT_TIMEOUT = 120.0


@dataclass(frozen=True)
class Completed:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


def run(
    argv: Sequence[str],
    *,
    cwd: Path | str | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    check: bool = True,
    input_text: str | None = None,
) -> Completed:
    """Run ``argv`` and capture its output; raise :class:`CommandError` on failure
    (a caller with advice for it catches it and adds its own hint)."""
    import subprocess  # here: `env` runs none, and never pays for the import

    args = [str(a) for a in argv]
    try:
        proc = subprocess.run(
            args,
            cwd=cwd,
            env=dict(env) if env is not None else None,
            capture_output=True,
            text=True,
            timeout=timeout,
            input=input_text,
            stdin=None if input_text is not None else subprocess.DEVNULL,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise CommandTimeoutError(args, -1, f"timed out after {timeout:g} s") from exc
    except FileNotFoundError as exc:
        raise CommandError(args, 127, f"{args[0]}: command not found") from exc
    done = Completed(tuple(args), proc.returncode, proc.stdout, proc.stderr)
    if check and proc.returncode != 0:
        raise CommandError(args, proc.returncode, proc.stderr or proc.stdout)
    return done


@dataclass(frozen=True)
class Hook:
    """A hook the user wrote as a shell string, and where it runs."""

    command: str
    cwd: Path
    env: Mapping[str, str]
    label: str  # what failed, in the error: "setup", "deps web install"…
    timeout: float | None = None  # None: as long as it takes


def run_hook(
    hook: Hook,
    *,
    output: TextIO | None = None,
    on_line: Callable[[str], None] | None = None,
) -> None:
    """Run ``hook``, streaming its output.

    The output goes line by line to ``on_line`` (or ``output``, default stderr)
    and the last lines are kept so a failure can show them.
    """
    import subprocess

    stream = output if output is not None else sys.stderr
    tail: list[str] = []
    proc = subprocess.Popen(  # noqa: S602 - hooks are shell strings the user wrote
        hook.command,
        shell=True,
        cwd=hook.cwd,
        env=dict(hook.env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        errors="replace",
        start_new_session=True,
    )
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            tail.append(line.rstrip("\n"))
            del tail[:-40]
            if on_line is not None:
                on_line(line.rstrip("\n"))
            else:
                stream.write(line)
                stream.flush()
        code = proc.wait(timeout=hook.timeout)
    except BaseException:
        _kill_group(proc.pid)
        proc.wait()
        raise
    if code != 0:
        shown = "\n".join(tail[-20:])
        raise HookError(
            f"{hook.label} hook `{hook.command}` failed with exit code {code}"
            + (f"; its last output:\n{shown}" if shown else ""),
            hint="fix the hook or the project, then run the command again",
        )


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, 9)
