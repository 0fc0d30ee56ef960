"""Host name → backend port, read from each registered repository's ledger.

There is no second registry of routes: a worktree's route exists while its
ledger record does. Each ledger is re-read only when its file changes, or git's
record of where one of its worktrees is (a move; checked on every lookup, so a
removed worktree's route disappears at once); config, the main worktree's env
files and the port lease registry (main's port, when its env files set none)
are re-checked at most once a second.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from branchyard.config.model import Config
from branchyard.core.errors import BranchyardError
from branchyard.core.identity import dns_label, project_label, worktree_host
from branchyard.core.paths import Signature, signature
from branchyard.envfiles.files import main_env_files, read_env_files
from branchyard.ledger import Ledger, LedgerState, WorktreeRecord
from branchyard.system.mainports import main_ports, port_names
from branchyard.system.ports import registry_path

CONFIG_RECHECK = 1.0  # seconds between checks of config and env file changes
MAX_HOST_FORMS = 1024  # Host header values whose normalized form is remembered
LEDGER_RECHECK = 0.05  # seconds a known host is served before its ledger is checked again


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
    # every worktree of its repository: (path, how to call it, its ports, its app
    # port), so the 502 page can tell which server listens on the wrong port
    site: tuple[tuple[str, str, tuple[int, ...], int], ...] = ()


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


def _config_files(main: Path) -> list[Path]:
    # main's port may come from its lease: a change of the lease registry counts too
    return [main / "branchyard.toml", main / "branchyard.local.toml", registry_path()]


def env_files(main: Path, config: Config) -> list[Path]:
    return main_env_files(main, config.env.shared)


def run_hint(config: Config) -> str:
    """How to start a worktree's app so it gets its port (bare `branchyard run`
    runs `[hooks] run` through the shell)."""
    return "branchyard run" if config.hooks.run else \
        "branchyard run -- <your dev server command>"


def main_site_ports(common_dir: Path, config: Config) -> dict[str, int]:
    """Main's ports as the proxy sees them: its env files' PORT, else its lease
    (leased here the first time, so the route exists before anything ran in main)."""
    try:
        env = read_env_files(env_files(main_path_of(common_dir), config))
    except (OSError, UnicodeDecodeError, ValueError):
        env = {}  # an unreadable env file must not take the proxy down
    try:
        return main_ports(common_dir, env, config)
    except BranchyardError:  # the registry is busy or broken: what is leased already
        return main_ports(common_dir, env, config, lease=False)


def load_site(common_dir: Path, config: Config, state: LedgerState) -> RepoSite:
    """All hosts of one repository (pure apart from main's env files and lease)."""
    main = main_path_of(common_dir)
    project = project_label(config.project.name or repo_name(common_dir))
    tld = config.proxy.tld
    names = port_names(config)
    run = run_hint(config)
    hosts: dict[str, Backend] = {}
    main_ports_ = main_site_ports(common_dir, config)
    records = sorted(state.worktrees.values(), key=lambda r: r.index)
    site = ((str(main), "the main worktree", tuple(main_ports_.values()),
             main_ports_.get(names[0], 0)),
            *((r.path, r.branch, tuple(r.ports.values()), r.ports.get(_app_name(r, names), 0))
              for r in records))
    _add_ports(hosts, None, project, tld, main_ports_, names[0],
               ("main", "(main worktree)", str(main), run), site)
    for rec in records:
        _add_ports(hosts, rec.subdomain, project, tld, rec.ports, _app_name(rec, names),
                   (rec.slug, rec.branch, rec.path, run), site)
    return RepoSite(common_dir, project, tld, hosts)


def _app_name(rec: WorktreeRecord, names: tuple[str, ...]) -> str:
    for name in (names[0], "PORT"):
        if name in rec.ports:
            return name
    return next(iter(rec.ports), names[0])


def _add_ports(hosts: dict[str, Backend], subdomain: str | None, project: str, tld: str,
               ports: dict[str, int], app: str, who: tuple[str, str, str, str],
               site: tuple[tuple[str, str, tuple[int, ...], int], ...]) -> None:
    slug, branch, path, run = who
    for name, port in ports.items():
        service = "" if name == app else service_label(name)
        label = service_host_label(service, subdomain) if service else subdomain
        host = worktree_host(label, project, tld)
        hosts[host] = Backend(host, port, slug, branch, path, service,
                              f"cd {path} && {run}", subdomain or "", site)


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
        self._names: dict[str, str] = {}  # Host header value → normalized name
        self._next_config_check = 0.0
        self._next_ledger_check = 0.0
        self.errors: list[str] = []
        self._registry_errors: list[str] = []  # kept across rebuilds of the hosts

    def resolve(self, host: str) -> Backend | None:
        """The backend for a Host header value (port and case ignored)."""
        name = self._names.get(host)
        if name is None:  # a browser sends the same few Host values again and again
            if len(self._names) >= MAX_HOST_FORMS:
                self._names.clear()
            name = self._names[host] = normalize_host(host)
        backend = self._hosts.get(name)
        if backend is None or self._clock() >= self._next_ledger_check:
            # an unknown host may be a worktree, or a repository, made a moment ago
            self.refresh(everything=backend is None)
            backend = self._hosts.get(name)
        return backend

    def serves_name(self, name: str) -> bool:
        """Whether ``name`` is a project's host or under one (``*.<project>.<tld>``)."""
        name = normalize_host(name)
        return any(name == base or name.endswith("." + base)
                   for base in (f"{s.project}.{s.tld}" for s in self.sites()))

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
        sig = signature([self._registry_file])
        if sig == self._registry_sig:
            return False
        self._registry_sig = sig
        try:
            self._common_dirs = self._repos()
        except BranchyardError as err:  # keep serving the repositories known so far
            self._registry_errors = [str(err)]
            self.errors = [*self._registry_errors, *self.errors]
            return False
        self._registry_errors = []
        self._caches = {c: self._caches.get(c) or
                        _RepoCache(str(c / "branchyard" / "ledger.json"))
                        for c in self._common_dirs}
        return True

    def _refresh_repo(self, common: Path, check_config: bool) -> bool:
        cache = self._caches[common]
        # git's record of where each worktree is: a move changes it, not the ledger
        ledger_sig = signature([cache.ledger_file, *_gitdir_files(common, cache.state)])
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
        from branchyard.config.load import load_config

        main = main_path_of(common)
        files = _config_files(main)
        if cache.config is not None:
            files += env_files(main, cache.config)
        sig = signature(files)
        if sig == cache.config_sig and cache.config is not None:
            return False
        try:
            cache.config = load_config(main)[0]
        except BranchyardError:
            cache.config = Config()  # a broken config must not take the proxy down
        cache.config_sig = signature(_config_files(main) + env_files(main, cache.config))
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
        self.errors = [*self._registry_errors, *errors]


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
