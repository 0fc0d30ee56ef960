"""How a server's ``CREATE DATABASE … STRATEGY FILE_COPY`` copies the template's
files: by reflink (PostgreSQL >= 18 with ``file_copy_method = clone`` on a
copy-on-write filesystem — APFS, XFS, btrfs: O(1) in time and disk), or byte by
byte. The filesystem is probed where the server's data directory lives, which
branchyard can see for its managed cluster and for a server on this machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from branchyard.db.pgbin import CLONE_VERSION
from branchyard.system.fsprobe import FsProbe

if TYPE_CHECKING:
    import psycopg

_LOOPBACK = ("127.0.0.1", "::1", "localhost")


@dataclass(frozen=True)
class CloneMethod:
    """What clones on one server cost."""

    version: int  # the server's major version
    reflink: bool  # its data directory's filesystem makes reflinks
    visible: bool = True  # False: the data directory is not on this machine (or unreadable)

    @property
    def setting(self) -> str:
        """The ``file_copy_method`` to use ("" before PostgreSQL 18, which has none)."""
        if self.version < CLONE_VERSION:
            return ""
        return "clone" if self.reflink else "copy"

    @property
    def label(self) -> str:
        if self.setting == "clone":
            return "reflink (O(1))"
        if self.reflink:
            return (f"copy (the disk can reflink, PostgreSQL {self.version} cannot: "
                    f"{CLONE_VERSION} would clone in O(1))")
        return "copy" if self.visible else "copy (the server's disk is not visible from here)"

    def as_json(self) -> dict[str, Any]:
        return {"method": "reflink" if self.setting == "clone" else "copy",
                "label": self.label, "reflink_capable": self.reflink,
                "file_copy_method": self.setting or None, "server_version": self.version}


def reflinks(directory: Path) -> bool:
    """Whether files in ``directory`` can be reflinked (False when it cannot be probed)."""
    try:
        return FsProbe().capabilities(directory, directory).reflink
    except OSError:
        return False


def of_server(conn: psycopg.Connection[Any], data_dir: Path | None = None) -> CloneMethod:
    """The clone method of the server behind ``conn``; ``data_dir`` when known
    (the managed cluster), else asked of the server when it runs on this machine."""
    version = int(conn.info.server_version) // 10000
    directory = data_dir or _local_data_dir(conn)
    if directory is None or not directory.is_dir():
        return CloneMethod(version, reflink=False, visible=False)
    return CloneMethod(version, reflinks(directory))


def _local_data_dir(conn: psycopg.Connection[Any]) -> Path | None:
    from psycopg import Error

    host = conn.info.host
    if host not in _LOOPBACK and not host.startswith("/"):
        return None
    try:
        row = conn.execute("SHOW data_directory").fetchone()
    except Error:  # needs superuser or pg_read_all_settings
        return None
    return Path(row[0]) if row else None


def use(conn: psycopg.Connection[Any], data_dir: Path | None = None) -> None:
    """Make this session's FILE_COPY clones reflink where the server's disk can
    (no-op before PostgreSQL 18, which copies only one way)."""
    from psycopg import Error, sql

    if int(conn.info.server_version) // 10000 < CLONE_VERSION:
        return
    method = of_server(conn, data_dir)
    try:
        conn.execute(sql.SQL("SET file_copy_method = {}").format(sql.Literal(method.setting)))
    except Error:
        conn.execute("SET file_copy_method = copy")  # a build without clone support
