"""Checks on config values that types alone cannot express."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from branchyard.config.model import DATABASE_ENGINES, SERVER_FILES, Config
from branchyard.core.errors import ConfigError

SEED_MODES = ("clone", "empty", "dump:", "command:")
REFRESH_MODES = ("manual", "auto")
STRATEGIES = ("merge", "rebase", "squash")
DEPS_MODES = ("auto", "reflink", "hardlink", "copy", "install")
SERVICE_ENV = ("derived", "all")
RESTART_POLICIES = ("no", "on-failure")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_DB_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")


def check_config(config: Config, source: Path) -> None:
    """Raise ConfigError naming the key path and file for the first bad value."""
    _check_ports(config, source)
    _check_databases(config, source)
    _check_services(config, source)
    _one_of(config.merge.strategy, STRATEGIES, "merge.strategy", source)
    for i, deps in enumerate(config.deps):
        _one_of(deps.mode, DEPS_MODES, f"deps[{i}].mode", source)
    for name in config.env.vars:
        _env_name(name, f"env.vars.{name}", source)
    if not 0 < config.proxy.port < 65536:
        raise _err(source, "proxy.port", f"{config.proxy.port} is not a port number")
    _check_server(config, source)


def _check_server(config: Config, source: Path) -> None:
    server = config.server
    if server.port and not 0 < server.port < 65536:
        raise _err(source, "server.port", f"{server.port} is not a port number")
    if not 0 < server.max_connections <= 10000:
        raise _err(source, "server.max_connections",
                   f"{server.max_connections} must be between 1 and 10000")
    if server.cow_path and not (server.cow_path.startswith(("/", "~"))):
        raise _err(source, "server.cow_path", f"{server.cow_path!r} must be an absolute path "
                   "(or start with ~)")
    if server.cow_size_gb < 1:
        raise _err(source, "server.cow_size_gb", "must be 1 or more")
    if server.bin_dir:
        problem = _bin_dir_problem(server.bin_dir)
        if problem:
            raise _err(source, "server.bin_dir", problem)


def _bin_dir_problem(value: str) -> str:
    """Why ``[server] bin_dir`` cannot be used ("" when it can)."""
    path = Path(value).expanduser()
    if not path.is_absolute():
        return f"{value!r} must be an absolute path (or start with ~)"
    missing = [name for name in SERVER_FILES if not (path / name).is_file()]
    if missing:
        return f"{value!r} has no {', '.join(missing)} (it should be PostgreSQL's bin directory)"
    return ""


def _check_ports(config: Config, source: Path) -> None:
    names = config.ports.names
    for i, name in enumerate(names):
        _env_name(name, f"ports.names[{i}]", source)
    _unique(names, "ports.names", source)
    low, high = config.ports.range
    if not 1024 <= low <= high < 65536:
        raise _err(source, "ports.range", f"[{low}, {high}] must be within 1024-65535, low first")
    if config.ports.block < len(names):
        raise _err(source, "ports.block", f"{config.ports.block} is fewer than the "
                   f"{len(names)} port names")


def _check_databases(config: Config, source: Path) -> None:
    _unique([d.name for d in config.database], "database[].name", source)
    for i, db in enumerate(config.database):
        where = f"database[{i}]"
        if not _DB_NAME.match(db.name):
            raise _err(source, f"{where}.name", f"{db.name!r} must be lowercase letters, "
                       "digits, - or _, starting with a letter")
        _one_of(db.engine, DATABASE_ENGINES, f"{where}.engine", source)
        if not any(db.seed == m or (m.endswith(":") and db.seed.startswith(m))
                   for m in SEED_MODES):
            raise _err(source, f"{where}.seed", f"{db.seed!r} is not one of clone, empty, "
                       "dump:<url-or-env:VAR>, command:<cmd>")
        _env_name(db.env, f"{where}.env", source)
        if db.pool < 0:
            raise _err(source, f"{where}.pool", "must be 0 or more")
        _one_of(db.refresh, REFRESH_MODES, f"{where}.refresh", source)


def _check_services(config: Config, source: Path) -> None:
    services = config.services
    _one_of(services.env, SERVICE_ENV, "services.env", source)
    _on_env_change(services.on_env_change, "services.on_env_change", source)
    for key in ("backoff", "backoff_max", "stop_grace", "log_max_bytes", "log_files"):
        if getattr(services, key) <= 0:
            raise _err(source, f"services.{key}", "must be more than 0")
    if services.max_restarts < 0:
        raise _err(source, "services.max_restarts", "must be 0 or more")
    for name, svc in services.define.items():
        where = f"services.{name}"
        if not _DB_NAME.match(name):
            raise _err(source, where, f"{name!r} must be lowercase letters, digits, - or _, "
                       "starting with a letter")
        if not svc.command.strip():
            raise _err(source, f"{where}.command", "must not be empty")
        if svc.port and svc.port not in config.ports.names:
            raise _err(source, f"{where}.port", f"{svc.port!r} is not one of the [ports] "
                       f"names ({', '.join(config.ports.names)})")
        _one_of(svc.restart, RESTART_POLICIES, f"{where}.restart", source)
        if svc.on_env_change:
            _on_env_change(svc.on_env_change, f"{where}.on_env_change", source)
        if svc.ready not in ("", "none", "tcp") and not svc.ready.startswith("http:/"):
            raise _err(source, f"{where}.ready", f"{svc.ready!r} is not one of "
                       "http:/PATH, tcp, none")


def _on_env_change(value: str, where: str, source: Path) -> None:
    import signal

    if value in ("restart", "none"):
        return
    name = value.removeprefix("signal:")
    if not value.startswith("signal:") or not hasattr(signal, "SIG" + name.removeprefix("SIG")):
        raise _err(source, where, f"{value!r} is not one of restart, signal:NAME "
                   "(e.g. signal:HUP), none")


def _one_of(value: str, allowed: Iterable[str], where: str, source: Path) -> None:
    allowed = tuple(allowed)
    if value not in allowed:
        raise _err(source, where, f"{value!r} is not one of {', '.join(allowed)}")


def _env_name(name: str, where: str, source: Path) -> None:
    if not _ENV_NAME.match(name):
        raise _err(source, where, f"{name!r} is not a valid environment variable name")


def _unique(items: Iterable[str], where: str, source: Path) -> None:
    seen: set[str] = set()
    for item in items:
        if item in seen:
            raise _err(source, where, f"{item!r} appears twice")
        seen.add(item)


def _err(source: Path, where: str, problem: str) -> ConfigError:
    return ConfigError(f"{source}: `{where}`: {problem}", hint=f"fix `{where}` in {source.name}")
