"""Host name → backend port, read from each registered repository's ledger.

There is no second registry of routes: a worktree's route exists while its
ledger record does. Each ledger is re-read only when its file changes, or git's
record of where one of its worktrees is (a move; checked on every lookup, so a
removed worktree's route disappears at once); config and
the main worktree's env files are re-checked at most once a second.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from branchyard.config import Config
from branchyard.envfile import main_env_files, read_env_files
from branchyard.errors import BranchyardError
from branchyard.identity import dns_label, project_label, worktree_host
from branchyard.ledger import Ledger, LedgerState, WorktreeRecord

MAIN_DEFAULT_PORT = 3000
CONFIG_RECHECK = 1.0  # seconds between checks of config and env file changes
LEDGER_RECHECK = 0.05  # seconds a known host is served before its ledger is checked again
Signature = tuple[tuple[int, int, int], ...]


@dataclass(frozen=True)
class Backend:
    """Where a host's requests go, and what to tell the user when nothing listens."""

    host: str
    port: int
    worktree: str  # slug, or "main"
    branch: str
    path: str
    service: str = ""  # "" = the app port
    run_hint: str = ""
    subdomain: str = ""  # "" = the main worktree


@dataclass(frozen=True)
class RepoSite:
    """One repository's hosts, built from its ledger, config and main env files."""

    common_dir: Path
    project: str
    tld: str = "localhost"
    hosts: dict[str, Backend] = field(default_factory=dict)
    errors: tuple[str, ...] = ()


def service_label(port_name: str) -> str:
    """``API_PORT`` → ``api``: the host label of a named port."""
    base = port_name.upper().removesuffix("_PORT")
    return dns_label(base) or dns_label(port_name) or "port"


def service_host_label(service: str, subdomain: str | None) -> str:
    """The labels in front of the project for a named port: ``api.feat-x`` (main: ``api``)."""
    return f"{service}.{subdomain}" if subdomain else service


def main_path_of(common_dir: Path) -> Path:
    """The main worktree of a non-bare repository (the common dir for a bare one)."""
    return common_dir.parent if common_dir.name == ".git" else common_dir


def repo_name(common_dir: Path) -> str:
    main = main_path_of(common_dir)
    return main.name.removesuffix(".git") if main == common_dir else main.name


def _signature(paths: Iterable[Path | str]) -> Signature:
    sig: list[tuple[int, int, int]] = []
    for path in paths:
        try:
            st = os.stat(path)
            sig.append((st.st_mtime_ns, st.st_size, st.st_ino))
        except OSError:
            sig.append((0, 0, 0))
    return tuple(sig)


def _config_files(main: Path) -> list[Path]:
    return [main / "branchyard.toml", main / "branchyard.local.toml"]


def env_files(main: Path, config: Config) -> list[Path]:
    return main_env_files(main, config.env.shared)


def load_site(common_dir: Path, config: Config, state: LedgerState) -> RepoSite:
    """All hosts of one repository (pure apart from reading the main env files)."""
    main = main_path_of(common_dir)
    project = project_label(config.project.name or repo_name(common_dir))
    tld = config.proxy.tld
    names = config.ports.names or ("PORT",)
    run = f"branchyard run -- {config.hooks.run}" if config.hooks.run else \
        "branchyard run -- <your dev server command>"
    hosts: dict[str, Backend] = {}
    ports = main_ports(read_env_files(env_files(main, config)), names)
    _add_ports(hosts, None, project, tld, ports, names[0],
               ("main", "(main worktree)", str(main), run))
    for rec in sorted(state.worktrees.values(), key=lambda r: r.index):
        _add_ports(hosts, rec.subdomain, project, tld, rec.ports, _app_name(rec, names),
                   (rec.slug, rec.branch, rec.path, run))
    return RepoSite(common_dir, project, tld, hosts)


def _app_name(rec: WorktreeRecord, names: tuple[str, ...]) -> str:
    for name in (names[0], "PORT"):
        if name in rec.ports:
            return name
    return next(iter(rec.ports), names[0])


def _add_ports(hosts: dict[str, Backend], subdomain: str | None, project: str, tld: str,
               ports: dict[str, int], app: str, who: tuple[str, str, str, str]) -> None:
    slug, branch, path, run = who
    for name, port in ports.items():
        service = "" if name == app else service_label(name)
        label = service_host_label(service, subdomain) if service else subdomain
        host = worktree_host(label, project, tld)
        hosts[host] = Backend(host, port, slug, branch, path, service,
                              f"cd {path} && {run}", subdomain or "")


def main_ports(env: dict[str, str], names: tuple[str, ...]) -> dict[str, int]:
    ports: dict[str, int] = {}
    for i, name in enumerate(names):
        value = env.get(name, "").strip()
        if value.isdigit() and 0 < int(value) < 65536:
            ports[name] = int(value)
        elif i == 0:
            ports[name] = MAIN_DEFAULT_PORT
    return ports


@dataclass
class _RepoCache:
    ledger_file: str
    config_sig: Signature = ()
    ledger_sig: Signature = ()
    config: Config | None = None
    state: LedgerState | None = None
    site: RepoSite | None = None


class RouteTable:
    """Resolves a request's Host to a :class:`Backend`, following ledger changes.

    A host not in the table makes the lookup check everything at once, so a new
    worktree or repository is routed as soon as it exists; a known
    host is served from the table for up to ``LEDGER_RECHECK`` seconds, which
    keeps a ``stat`` off every request of a busy keep-alive connection. The
    registry of repositories, their config and env files are checked at most
    once a second.
    """

    def __init__(self, repos: Callable[[], list[Path]], registry_file: Path,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._repos = repos
        self._registry_file = str(registry_file)
        self._clock = clock
        self._registry_sig: Signature = ()
        self._common_dirs: list[Path] = []
        self._caches: dict[Path, _RepoCache] = {}
        self._hosts: dict[str, Backend] = {}
        self._next_config_check = 0.0
        self._next_ledger_check = 0.0
        self.errors: list[str] = []

    def resolve(self, host: str) -> Backend | None:
        """The backend for a Host header value (port and case ignored)."""
        name = normalize_host(host)
        backend = self._hosts.get(name)
        if backend is None or self._clock() >= self._next_ledger_check:
            # an unknown host may be a worktree, or a repository, made a moment ago
            self.refresh(everything=backend is None)
            backend = self._hosts.get(name)
        return backend

    def sites(self) -> list[RepoSite]:
        self.refresh()
        return [c.site for c in self._caches.values() if c.site is not None]

    def refresh(self, *, everything: bool = False) -> None:
        """Re-check the ledgers; the registry, config and env files when due or asked."""
        now = self._clock()
        self._next_ledger_check = now + LEDGER_RECHECK
        check_config = everything or now >= self._next_config_check
        if check_config:
            self._next_config_check = now + CONFIG_RECHECK
        changed = check_config and self._refresh_registry()
        for common in self._common_dirs:
            changed |= self._refresh_repo(common, check_config or changed)
        if changed:
            self._rebuild_hosts()

    def _refresh_registry(self) -> bool:
        sig = _signature([self._registry_file])
        if sig == self._registry_sig:
            return False
        self._registry_sig = sig
        try:
            self._common_dirs = self._repos()
        except BranchyardError as err:  # keep serving the repositories known so far
            self.errors = [str(err)]
            return False
        self._caches = {c: self._caches.get(c) or
                        _RepoCache(str(c / "branchyard" / "ledger.json"))
                        for c in self._common_dirs}
        return True

    def _refresh_repo(self, common: Path, check_config: bool) -> bool:
        cache = self._caches[common]
        # git's record of where each worktree is: a move changes it, not the ledger
        ledger_sig = _signature([cache.ledger_file, *_gitdir_files(common, cache.state)])
        config_changed = ((check_config or cache.config is None)
                          and self._config_changed(common, cache))
        if ledger_sig == cache.ledger_sig and not config_changed and cache.site is not None:
            return False
        try:
            if ledger_sig != cache.ledger_sig or cache.state is None:
                cache.state = Ledger(common).read(store_moves=False)  # never wait for the lock
                cache.ledger_sig = ledger_sig
            assert cache.config is not None
            cache.site = load_site(common, cache.config, cache.state)
        except BranchyardError as err:
            cache.site = RepoSite(common, repo_name(common), errors=(str(err),))
        return True

    def _config_changed(self, common: Path, cache: _RepoCache) -> bool:
        from branchyard.configload import load_config

        main = main_path_of(common)
        files = _config_files(main)
        if cache.config is not None:
            files += env_files(main, cache.config)
        sig = _signature(files)
        if sig == cache.config_sig and cache.config is not None:
            return False
        try:
            cache.config = load_config(main)[0]
        except BranchyardError:
            cache.config = Config()  # a broken config must not take the proxy down
        cache.config_sig = _signature(_config_files(main) + env_files(main, cache.config))
        return True

    def _rebuild_hosts(self) -> None:
        hosts: dict[str, Backend] = {}
        errors: list[str] = []
        for common in self._common_dirs:
            site = self._caches[common].site
            if site is None:
                continue
            errors.extend(site.errors)
            for host, backend in site.hosts.items():
                hosts.setdefault(host, backend)  # first registered repo wins a clash
        self._hosts = hosts
        self.errors = errors


def _gitdir_files(common: Path, state: LedgerState | None) -> list[str]:
    if state is None:
        return []
    return [str(common / "worktrees" / r.git_id / "gitdir")
            for r in state.worktrees.values() if r.git_id]


def normalize_host(host: str) -> str:
    """``Feat-X.App.localhost:1355`` → ``feat-x.app.localhost``."""
    host = host.strip().lower()
    if host.startswith("["):
        return host.partition("]")[0] + "]"
    host = host.rpartition(":")[0] if ":" in host else host
    return host.rstrip(".")
