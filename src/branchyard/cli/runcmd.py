"""`run`: a command inside a worktree, with its env, in its own process group."""

from __future__ import annotations

import click

from branchyard.cli.output import Reply, respond


@click.command(context_settings={"ignore_unknown_options": True,
                                 "allow_interspersed_args": False})
@click.argument("args", nargs=-1, type=click.UNPROCESSED, required=True)
@click.option("--port-flag", default=None,
              help="Append FLAG PORT to the command (for tools that ignore $PORT); "
                   "default: [ports] inject_flag.")
def run(args: tuple[str, ...], port_flag: str | None) -> None:
    """Run a command in a worktree with its environment: `branchyard run [BRANCH] -- CMD…`.

    The process is recorded so `stop` and `down` end it, and its exit code is
    passed through.
    """
    from branchyard.api.runner import RunRequest, run_command

    def body() -> Reply:
        name, argv = _split(args)
        code = run_command(RunRequest(name=name, argv=argv, port_flag=port_flag))
        return Reply(exit_code=code)

    respond("run", False, body)


def _split(args: tuple[str, ...]) -> tuple[str | None, tuple[str, ...]]:
    """``[BRANCH] -- CMD…`` (click keeps everything after ``--`` in args)."""
    from branchyard.errors import UsageError

    items = list(args)
    if "--" in items:
        cut = items.index("--")
        head, tail = items[:cut], items[cut + 1:]
    else:
        head, tail = [], items
    if len(head) > 1 or not tail:
        raise UsageError("usage: branchyard run [BRANCH] -- COMMAND [ARGS…]")
    return (head[0] if head else None), tuple(tail)
