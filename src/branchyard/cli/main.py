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

    try:
        # The raw arguments travel along for `run`, which must see its `--` as typed.
        cli.main(args=args, prog_name="branchyard", standalone_mode=True, obj={"argv": args})
    except SystemExit as exc:
        return _exit_code(exc)
    return 0
