"""The main worktree's ports: what its own env files set, else a lease of its own.

Main is a worktree like the others: its app port is the ``PORT`` (each ``[ports]
names`` entry) its env files set, else a port leased to it like any worktree's,
under the owner ``<git common dir>#@main``. The lease is stable (the same block
every time) and kept while the repository exists: ``down``, ``gc`` and ``doctor``
never release it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from branchyard.config.model import Config
from branchyard.system import ports as portlib

MAIN_OWNER = "@main"  # never a worktree slug: slugs are [a-z0-9_]


def main_owner(common_dir: Path) -> str:
    return portlib.owner_key(common_dir, MAIN_OWNER)


def is_main_owner(owner: str) -> bool:
    return portlib.owner_parts(owner)[1] == MAIN_OWNER


def port_names(config: Config) -> tuple[str, ...]:
    return config.ports.names or ("PORT",)


def app_port_name(config: Config, ports: Mapping[str, int]) -> str:
    """The port a worktree's URL routes to: the first named port, normally PORT."""
    names = port_names(config)
    for name in (names[0], "PORT"):
        if name in ports:
            return name
    return next(iter(ports), names[0])


def env_ports(env: Mapping[str, str], names: tuple[str, ...]) -> dict[str, int]:
    """The named ports a set of env values gives (valid port numbers only)."""
    found: dict[str, int] = {}
    for name in names:
        value = env.get(name, "").strip()
        if value.isdigit() and 0 < int(value) < 65536:
            found[name] = int(value)
    return found


def main_ports(common_dir: Path, env: Mapping[str, str], config: Config, *,
               lease: bool = True) -> dict[str, int]:
    """Main's ports, in ``[ports] names`` order: ``env`` (main's env files) first,
    else main's lease; ``lease=False`` only reads the leases (never waits for the
    registry's lock), so a port not leased yet is missing."""
    names = port_names(config)
    fixed = env_ports(env, names)
    if len(fixed) == len(names):
        return fixed
    owner = main_owner(common_dir)
    # read without the lock first: once leased, `env` and the proxy never wait for it
    leased = {x.name: x.port for x in portlib.all_leases() if x.owner == owner}
    if lease and not all(n in leased for n in names):
        leased = portlib.lease_ports(owner, names, config.ports)
    return {n: fixed.get(n, leased.get(n, 0)) for n in names if n in fixed or n in leased}
