"""The ``branchyard`` entry point."""

from __future__ import annotations

import sys
from collections.abc import Sequence


def _fast_env(args: list[str]) -> int | None:
    from branchyard.cli.envcmd import parse_env_args, print_env

    parsed = parse_env_args(args)
    if parsed is None:
        return None
    try:
        print_env(*parsed)
    except SystemExit as exc:
        return _exit_code(exc)
    return 0


def _exit_code(exc: SystemExit) -> int:
    return int(exc.code or 0) if not isinstance(exc.code, str) else 1


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    args = list(argv) if argv is not None else sys.argv[1:]
    if args[:1] == ["env"]:
        code = _fast_env(args[1:])
        if code is not None:
            return code
    from branchyard.cli.group import cli

    wants_json = "--json" in (args[:args.index("--")] if "--" in args else args)
    try:
        # The raw arguments travel along for `run`, which must see its `--` as typed.
        if not wants_json:
            cli.main(args=args, prog_name="branchyard", standalone_mode=True, obj={"argv": args})
            return 0
        return _main_json(args)
    except SystemExit as exc:
        return _exit_code(exc)


def _main_json(args: list[str]) -> int:
    """Like click's standalone mode, but a usage error is one JSON document (exit 2)."""
    import click

    from branchyard.cli.group import cli
    from branchyard.cli.output import EXIT_INTERRUPTED, EXIT_USAGE, Reply, render
    from branchyard.core.errors import UsageError

    try:
        code = cli.main(args=args, prog_name="branchyard", standalone_mode=False,
                        obj={"argv": args})
    except click.UsageError as exc:
        command = exc.ctx.command_path.removeprefix("branchyard").strip() if exc.ctx else ""
        hint = f"see `{exc.ctx.command_path} --help`" if exc.ctx else "see `branchyard --help`"
        render(command or "branchyard", True, Reply(
            exit_code=EXIT_USAGE, errors=(UsageError(exc.format_message(), hint=hint),)))
        return EXIT_USAGE
    except click.Abort:
        return EXIT_INTERRUPTED
    return code if isinstance(code, int) else 0
