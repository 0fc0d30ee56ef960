"""Machine-wide port leases: stable per worktree, probed by binding, never shared.

Leases live in ``<state dir>/ports.json`` (one file for every repository on the
machine, under a file lock), so two repositories never hand out the same port.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from branchyard.config.model import PortsConfig
from branchyard.core import statefile
from branchyard.core.errors import PortError
from branchyard.core.paths import state_dir

CONDUCTOR_PORTS = 10  # Conductor reserves 10 ports starting at CONDUCTOR_PORT


@dataclass(frozen=True)
class Lease:
    port: int
    owner: str  # "<git common dir>#<slug>"
    name: str
    leased_at: float


def owner_key(common_dir: Path | str, slug: str) -> str:
    """Who holds a port lease: ``<git common dir>#<slug>`` (read by :func:`owner_parts`)."""
    return f"{common_dir}#{slug}"


def owner_parts(owner: str) -> tuple[str, str]:
    """:func:`owner_key`'s common dir and slug."""
    common, _, slug = owner.rpartition("#")
    return common, slug


def registry_path() -> Path:
    return state_dir() / "ports.json"


@contextmanager
def _registry() -> Iterator[dict[str, dict[str, Any]]]:
    from filelock import FileLock  # only writers pay for its import

    path = registry_path()
    statefile.private_dir(path.parent, tighten=False)
    with FileLock(str(path) + ".lock", timeout=30):
        data = _load(path)
        before = json.dumps(data, sort_keys=True)
        yield data
        if json.dumps(data, sort_keys=True) != before:
            _save(path, data)


def _save(path: Path, leases: Mapping[str, Any]) -> None:
    statefile.write_json(path, {"leases": leases}, version=1, sort_keys=True)


def _load(path: Path) -> dict[str, dict[str, Any]]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except ValueError as exc:
        raise PortError(f"the port lease registry {path} is corrupt: {exc}",
                        hint="run `branchyard doctor --fix` to rebuild it") from exc
    leases: dict[str, dict[str, Any]] = doc.get("leases", {})
    return leases


def all_leases() -> list[Lease]:
    """Every lease on the machine (read without the lock; writes are atomic)."""
    data = _load(registry_path())
    return [Lease(int(p), v["owner"], v["name"], v.get("leased_at", 0.0))
            for p, v in sorted(data.items(), key=lambda kv: int(kv[0]))]


def is_free(port: int) -> bool:
    """Whether nothing listens on 127.0.0.1:``port`` (checked by binding as a dev
    server does: with SO_REUSEADDR, so sockets left in TIME_WAIT do not count)."""
    import socket  # here: reading the leases (`ls`, `env` in main) needs no socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        if os.name != "nt":  # on Windows the option means something else entirely
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def lease_ports(
    owner: str,
    names: Sequence[str],
    cfg: PortsConfig,
    *,
    fixed_base: int | None = None,
) -> dict[str, int]:
    """Lease one port per name for ``owner``; the same owner gets the same ports back.

    Without ``fixed_base`` the block is derived from a hash of the owner, so a
    re-created worktree lands on the same ports; a taken or busy block moves on
    to the next one. ``fixed_base`` (Conductor's ``CONDUCTOR_PORT``) pins them.
    """
    with _registry() as data:
        mine = {v["name"]: int(p) for p, v in data.items() if v["owner"] == owner}
        if all(n in mine for n in names):
            return {n: mine[n] for n in names}
        ports = _choose(owner, names, cfg, fixed_base, data)
        now = time.time()
        for name, port in ports.items():
            data[str(port)] = {"owner": owner, "name": name, "leased_at": now}
        return ports


def _choose(owner: str, names: Sequence[str], cfg: PortsConfig, fixed_base: int | None,
            data: Mapping[str, Mapping[str, Any]]) -> dict[str, int]:
    def usable(port: int) -> bool:
        lease = data.get(str(port))
        return (lease is None or lease["owner"] == owner) and is_free(port)

    if fixed_base is not None:
        if len(names) > CONDUCTOR_PORTS:
            raise PortError(f"{len(names)} named ports, but Conductor reserves only "
                            f"{CONDUCTOR_PORTS} from CONDUCTOR_PORT={fixed_base}")
        ports = {n: fixed_base + i for i, n in enumerate(names)}
        busy = [p for p in ports.values() if not usable(p)]
        if busy:
            raise PortError(f"port {busy[0]} from CONDUCTOR_PORT={fixed_base} is in use "
                            f"or leased to another worktree",
                            hint="stop what listens there (`branchyard stop`), or unset "
                                 "CONDUCTOR_PORT to let branchyard choose")
        return ports
    low, high = cfg.range
    block = max(cfg.block, len(names))
    blocks = (high - low + 1) // block
    if blocks < 1:
        raise PortError(f"[ports] range {low}-{high} is smaller than one block of {block}")
    start = int(hashlib.sha1(owner.encode(), usedforsecurity=False).hexdigest(), 16) % blocks
    for step in range(blocks):
        base = low + ((start + step) % blocks) * block
        ports = {n: base + i for i, n in enumerate(names)}
        if all(usable(p) for p in ports.values()):
            return ports
    raise PortError(f"no free block of {len(names)} ports in [ports] range {low}-{high}",
                    hint="widen `ports.range` or run `branchyard doctor --fix` to free "
                         "leases of removed worktrees")


def rebuild_registry(leases: Iterable[Lease]) -> Path:
    """Replace an unreadable registry by ``leases`` (what the ledgers record), for
    ``doctor --fix``; the unreadable file is kept beside it, and its path returned."""
    from filelock import FileLock

    path = registry_path()
    with FileLock(str(path) + ".lock", timeout=30):
        backup = path.with_name(f"ports.unreadable.{int(time.time())}.json")
        if path.exists():
            os.replace(path, backup)
        data = {str(lease.port): {"owner": lease.owner, "name": lease.name,
                                  "leased_at": lease.leased_at} for lease in leases}
        _save(path, data)
    return backup


def release_ports(owner: str) -> list[int]:
    """Drop every lease of ``owner``; returns the freed ports."""
    with _registry() as data:
        freed = [int(p) for p, v in data.items() if v["owner"] == owner]
        for port in freed:
            del data[str(port)]
    return sorted(freed)


def conductor_base() -> int | None:
    """``CONDUCTOR_PORT`` when set: the first of the ports Conductor reserved."""
    raw = os.environ.get("CONDUCTOR_PORT", "").strip()
    if not raw:
        return None
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise PortError(f"CONDUCTOR_PORT={raw!r} is not a port number",
                        hint="unset it or set it to the first port Conductor reserved")
    return int(raw)
