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
    """Entry point; returns the exit code. Run as the program (no ``argv``: the
    console script, ``python -m branchyard``), it ends the process itself once the
    command is done (:func:`_end_process`)."""
    code = _run(list(argv) if argv is not None else sys.argv[1:])
    if argv is None:
        _end_process(code)
    return code


def _end_process(code: int) -> None:
    """Exit now, skipping what Python's shutdown would do after this: tear down its
    ~400 modules object by object (the database driver's alone takes ~30 ms of a
    CPU), which nobody sees. Exit handlers still run and output is flushed; with
    a thread alive that Python would wait for, or output that cannot be flushed
    (a closed pipe), the ordinary shutdown runs instead, as it did."""
    import atexit
    import os
    import threading

    main_thread = threading.main_thread()
    if any(not t.daemon for t in threading.enumerate() if t is not main_thread):
        return
    atexit._run_exitfuncs()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        return
    os._exit(code)


def _run(args: list[str]) -> int:
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
