"""SQLite: a consistent per-worktree copy of the main database file.

In WAL mode the main file alone is not a consistent database (recent commits
sit in the ``-wal`` file), so the copy goes through SQLite's online backup API.
Otherwise a shared lock is held while the file is copied (reflinked when the
filesystem can), so no writer can commit half-way through the copy. The copy is
written under a temporary name and renamed into place: an interrupted copy
never leaves a partial database behind.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from branchyard.core.errors import DatabaseError

FICLONE = 0x40049409  # Linux ioctl: share the extents (copy-on-write filesystems)
SIDE_FILES = ("-wal", "-shm", "-journal")
_FORMS = re.compile(r"^(?P<prefix>sqlite:///|sqlite://|file://|file:)?(?P<path>[^?]*)"
                    r"(?P<query>\?.*)?$")


@dataclass(frozen=True)
class SqliteRef:
    """A SQLite location as written in an env var: ``file:./data/agent.db``,
    ``sqlite:///data/app.db`` or a plain path."""

    prefix: str
    path: str
    query: str = ""

    def render(self) -> str:
        return f"{self.prefix}{self.path}{self.query}"

    def with_path(self, path: str) -> SqliteRef:
        return SqliteRef(self.prefix, path, self.query)

    def resolve(self, base: Path) -> Path:
        return Path(os.path.normpath(base / os.path.expanduser(self.path)))


def parse_ref(value: str) -> SqliteRef:
    match = _FORMS.match(value.strip())
    if match is None or not match.group("path"):
        raise DatabaseError(f"not a SQLite location: {value!r}",
                            hint="use a path, file:./data/app.db or sqlite:///data/app.db")
    return SqliteRef(match.group("prefix") or "", match.group("path"), match.group("query") or "")


def renamed(ref: SqliteRef, stem: str) -> SqliteRef:
    """``file:./data/agent.db`` → ``file:./data/<stem>.db`` (relative stays relative)."""
    head, _, name = ref.path.rpartition("/")
    suffix = Path(name).suffix
    return ref.with_path(f"{head}/{stem}{suffix}" if head or ref.path.startswith("/")
                         else f"{stem}{suffix}")


def in_wal_mode(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            header = fh.read(20)
    except OSError:
        return False
    return (len(header) == 20 and header[18] == 2) or Path(f"{path}-wal").exists()


def copy_database(source: Path, target: Path) -> str:
    """Copy ``source`` to ``target`` consistently; returns the method used."""
    if not source.is_file():
        raise DatabaseError(f"the main SQLite database {source} does not exist",
                            hint="create it (run the app or its migrations once in the main "
                                 "worktree), or set seed = \"empty\"")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.partial")
    try:
        method = _backup(source, tmp) if in_wal_mode(source) else _locked_copy(source, tmp)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return method


@contextlib.contextmanager
def _failing_as(what: str, hint: str) -> Iterator[None]:
    """A :class:`sqlite3.Error` inside is a :class:`DatabaseError`: ``what`` failed."""
    try:
        yield
    except sqlite3.Error as exc:
        raise DatabaseError(f"{what} failed: {exc}", hint=hint) from None


def _backup(source: Path, tmp: Path) -> str:
    with closing(sqlite3.connect(f"file:{source}?mode=ro", uri=True)) as src, \
            closing(sqlite3.connect(tmp)) as dst, \
            _failing_as(f"copying {source} with the SQLite backup API",
                        hint="check the disk space and that the file is a SQLite database"):
        src.backup(dst)
        dst.execute("PRAGMA journal_mode=DELETE")  # the copy stands alone, without -wal
    return "backup"


def _locked_copy(source: Path, tmp: Path) -> str:
    with closing(sqlite3.connect(source, isolation_level=None)) as conn, \
            _failing_as(f"reading {source}", hint="is it a SQLite database? Is another "
                                                  "program holding an exclusive lock?"):
        conn.execute("BEGIN")
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # takes SHARED
        method = _clone_file(source, tmp)
        conn.execute("ROLLBACK")
    return method


def _clone_file(source: Path, target: Path) -> str:
    import fcntl

    with source.open("rb") as src, target.open("wb") as dst:
        try:
            fcntl.ioctl(dst.fileno(), FICLONE, src.fileno())
            return "reflink"
        except OSError:
            shutil.copyfileobj(src, dst, 1 << 20)
    return "copy"


def table_count(path: Path) -> int:
    if not path.is_file():
        return 0
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        row = conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()
    finally:
        conn.close()
    return int(row[0]) if row else 0


def create_empty(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    sqlite3.connect(path).close()


def remove_database(path: Path) -> bool:
    """Remove the file and its -wal/-shm/-journal; True when it existed."""
    existed = path.exists()
    for candidate in (path, *(Path(f"{path}{s}") for s in SIDE_FILES)):
        with contextlib.suppress(FileNotFoundError):
            candidate.unlink()
    return existed
