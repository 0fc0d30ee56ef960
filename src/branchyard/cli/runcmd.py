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
@click.pass_context
def run(ctx: click.Context, args: tuple[str, ...], port_flag: str | None) -> None:
    """Run a command in a worktree with its environment: `branchyard run [BRANCH] -- CMD…`.

    The process is recorded so `stop` and `down` end it, and its exit code is
    passed through.
    """
    from branchyard.api.runner import RunRequest, run_command

    def body() -> Reply:
        raw = (ctx.obj or {}).get("argv", list(args))
        name, argv = _split(raw, port_flag)
        code = run_command(RunRequest(name=name, argv=argv, port_flag=port_flag))
        return Reply(exit_code=code)

    respond("run", False, body)


def _split(raw: list[str], port_flag: str | None) -> tuple[str | None, tuple[str, ...]]:
    """``run [--port-flag F] [BRANCH] -- CMD…`` from the arguments as typed (click
    drops a leading ``--``, so it cannot tell BRANCH from CMD by itself)."""
    from branchyard.errors import UsageError

    items = raw[raw.index("run") + 1:] if "run" in raw else list(raw)
    if "--" not in items:
        raise UsageError("usage: branchyard run [BRANCH] -- COMMAND [ARGS…]",
                         hint="put `--` before the command")
    cut = items.index("--")
    head, tail = items[:cut], items[cut + 1:]
    if port_flag is not None:
        head = [h for h in head if not h.startswith("--port-flag")]
        head = [h for h in head if h != port_flag]
    if len(head) > 1 or not tail:
        raise UsageError("usage: branchyard run [BRANCH] -- COMMAND [ARGS…]")
    return (head[0] if head else None), tuple(tail)
