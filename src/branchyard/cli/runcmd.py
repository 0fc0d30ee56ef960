"""`run`: a command inside a worktree, with its env, in its own process group."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from types import FrameType

import click

from branchyard.cli.output import Reply, note, respond


@click.command(context_settings={"ignore_unknown_options": True,
                                 "allow_interspersed_args": False})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
@click.option("--port-flag", default=None,
              help="Append FLAG PORT to the command (for tools that ignore $PORT); "
                   "default: [ports] inject_flag.")
@click.pass_context
def run(ctx: click.Context, args: tuple[str, ...], port_flag: str | None) -> None:
    """Run a command in a worktree with its environment: `branchyard run [NAME] [-- CMD…]`.

    With no command, runs the `[hooks] run` command through the shell, so
    `--port $PORT` in it expands to the worktree's port. The process is recorded
    so `stop` and `down` end it, and its exit code is passed through.
    """
    from branchyard.api.runner import RunRequest, run_command

    def body() -> Reply:
        raw = (ctx.obj or {}).get("argv", list(args))
        name, argv, flag = _split(raw, port_flag)
        code = run_command(RunRequest(name=name, argv=argv, port_flag=flag), note,
                           forwarding_signals)
        return Reply(exit_code=code)

    respond("run", False, body)


FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextmanager
def forwarding_signals(pgid: int) -> Iterator[None]:
    """While the command runs, the signals `branchyard run` gets go to its whole
    process group (Ctrl-C reaches the dev server, not only the wrapper)."""
    def forward(signum: int, _frame: FrameType | None) -> None:
        with suppress(ProcessLookupError):
            os.killpg(pgid, signum)

    previous = {s: signal.signal(s, forward) for s in FORWARDED_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


USAGE = "usage: branchyard run [--port-flag FLAG] [NAME] [-- COMMAND [ARGS…]]"


def _split(raw: list[str], port_flag: str | None) -> tuple[str | None, tuple[str, ...], str | None]:
    """``run [--port-flag F] [NAME] [--port-flag F] [-- CMD…]`` from the arguments as
    typed (click drops a leading ``--``, so it cannot tell NAME from CMD by itself).
    Returns NAME, the command (empty: the run hook) and the port flag."""
    from branchyard.core.errors import UsageError

    items = raw[raw.index("run") + 1:] if "run" in raw else list(raw)
    cut = items.index("--") if "--" in items else len(items)
    head, tail = items[:cut], items[cut + 1:]
    words: list[str] = []
    while head:
        item = head.pop(0)
        if item == "--port-flag" and head:
            port_flag = head.pop(0)
        elif item.startswith("--port-flag="):
            port_flag = item.partition("=")[2]
        else:
            words.append(item)
    if len(words) > 1 or ("--" in items and not tail):
        raise UsageError(USAGE, hint="put `--` before the command; with no command, "
                                     "the `[hooks] run` command runs")
    return (words[0] if words else None), tuple(tail), port_flag
