"""Rendering results: human text, or one JSON document with ``--json``.

Every command body returns a :class:`Reply`; :func:`respond` turns it (or the
error it raised) into output and an exit code, the same way for every command.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from branchyard.core.errors import BranchyardError

SCHEMA_VERSION = 1
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_CONFLICT = 3  # `conflicts` / `check-edit`: a conflict or lock was found
EXIT_PARTIAL = 4  # partly done: what is left is kept in the ledger for `doctor --fix`
EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Reply:
    """What a command produced: data for ``--json``, text for people."""

    data: Mapping[str, Any] = field(default_factory=dict)
    text: str = ""  # printed on stdout in human mode
    exit_code: int = EXIT_OK
    errors: tuple[BranchyardError, ...] = ()


def json_option(func: F) -> F:
    import click  # here, so the click-free fast path for `env` can use this module

    return click.option("--json", "as_json", is_flag=True,
                        help="Print one JSON document on stdout.")(func)


def respond(command: str, as_json: bool, body: Callable[[], Reply]) -> None:
    """Run ``body`` and render its reply or error; exits the process."""
    try:
        reply = body()
    except BranchyardError as err:
        reply = Reply(exit_code=err.exit_code, errors=(err,))
    except KeyboardInterrupt:
        reply = Reply(exit_code=EXIT_INTERRUPTED, errors=(
            BranchyardError("interrupted", hint="run the command again to finish"),))
    except Exception as exc:
        log = _write_crash_log(command)
        reply = Reply(exit_code=EXIT_INTERNAL, errors=(BranchyardError(
            f"internal error: {type(exc).__name__}: {exc}",
            hint=f"this is a bug in branchyard; the traceback is in {log}"),))
    render(command, as_json, reply)
    sys.exit(reply.exit_code)


def render(command: str, as_json: bool, reply: Reply) -> None:
    if as_json:
        doc: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "command": command,
                               "ok": reply.exit_code == EXIT_OK and not reply.errors}
        doc.update(reply.data)
        doc["errors"] = [{"code": e.code, "message": e.message, "hint": e.hint}
                         for e in reply.errors]
        sys.stdout.write(json.dumps(doc, indent=2, default=str) + "\n")
        return
    if reply.text:
        sys.stdout.write(reply.text if reply.text.endswith("\n") else reply.text + "\n")
    for err in reply.errors:
        sys.stderr.write(f"error: {err.message}\n")
        if err.hint:
            sys.stderr.write(f"hint: {err.hint}\n")


def _write_crash_log(command: str) -> Path:
    from branchyard.core.paths import state_dir

    path = state_dir() / "logs" / f"crash-{os.getpid()}.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    import traceback

    path.write_text(f"branchyard {command}\n{traceback.format_exc()}", encoding="utf-8")
    return path


def note(message: str) -> None:
    """A progress or status message for people: always stderr."""
    sys.stderr.write(message + "\n")
    sys.stderr.flush()
