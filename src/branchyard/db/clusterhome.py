"""Where the managed cluster lives and as whom it runs: inside the state dir, or
where the server's unprivileged user can reach it (as root), or on a
copy-on-write home (``[server] cow``/``cow_path``)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
from pathlib import Path

from branchyard.config.model import ServerConfig
from branchyard.core.errors import DatabaseError
from branchyard.db import cow, pgbin
from branchyard.db.cow import CowHome
from branchyard.db.serverstate import ServerState, server_home


def run_as_user() -> str:
    """The OS user the cluster runs as: "" (the current one), or an unprivileged
    one as root, since Postgres refuses to run as root."""
    if os.geteuid() != 0:
        return ""
    import pwd

    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    raise DatabaseError("running as root, and there is no unprivileged user to run "
                        "Postgres as", hint="create a `postgres` user, or run as a normal user")


def cluster_dir(user: str) -> Path:
    """Inside the state dir, unless the server's user could not reach it (root's
    home is private): then a per-state-dir directory under /var/lib/branchyard."""
    home = server_home()  # made 0700 when branchyard creates it
    if not user or (home.is_dir() and _traversable(home)):
        return home / "cluster"
    digest = hashlib.sha1(str(home).encode(), usedforsecurity=False).hexdigest()[:12]
    return pgbin.SHARED_ROOT / f"server-{digest}"


def _traversable(path: Path) -> bool:
    for part in (path, *path.parents):
        if part.exists() and not part.stat().st_mode & stat.S_IXOTH:
            return False
    return True


def wants_cow(cfg: ServerConfig) -> bool:
    return cfg.cow or bool(cfg.cow_path)


def cow_home(cfg: ServerConfig, user: str) -> CowHome:
    """The copy-on-write home ``[server] cow``/``cow_path`` asks for (an image is
    made and mounted here, once)."""
    key = str(server_home())
    if cfg.cow_path:
        home = cow.in_directory(Path(cfg.cow_path), key)
        if user and not _traversable(home.cluster_dir.parent):
            raise DatabaseError(
                f"--cow {cfg.cow_path}: the user the server runs as ({user}) cannot reach it",
                hint=f"make {cfg.cow_path} and its parents searchable by others (chmod o+x), "
                     "or name another directory")
        return home
    home = cow.image_home(key)
    cow.make_image(home, cfg.cow_size_gb)
    return home


def on_reflinks(state: ServerState) -> bool:
    """Whether the cluster's directory (or where it will be) can reflink files."""
    from branchyard.db import cloning

    where = Path(state.cluster_dir)
    probe = where if where.is_dir() else where.parent
    return probe.is_dir() and cloning.reflinks(probe)
