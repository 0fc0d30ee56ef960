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
from dataclasses import dataclass
from pathlib import Path

from branchyard.config.model import Config
from branchyard.core.errors import BranchyardError
from branchyard.core.paths import Signature, signature
from branchyard.ledger import Ledger, LedgerState
from branchyard.proxy.backends import (
    Backend,
    RepoSite,
    config_files,
    env_files,
    load_site,
    main_path_of,
    repo_name,
)

CONFIG_RECHECK = 1.0  # seconds between checks of config and env file changes
MAX_HOST_FORMS = 1024  # Host header values whose normalized form is remembered
LEDGER_RECHECK = 0.05  # seconds a known host is served before its ledger is checked again


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
        files = config_files(main)
        if cache.config is not None:
            files += env_files(main, cache.config)
        sig = signature(files)
        if sig == cache.config_sig and cache.config is not None:
            return False
        try:
            cache.config = load_config(main)[0]
        except BranchyardError:
            cache.config = Config()  # a broken config must not take the proxy down
        cache.config_sig = signature(config_files(main) + env_files(main, cache.config))
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
