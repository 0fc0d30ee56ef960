"""One repository's hosts: each worktree's ports as backends, from its ledger
record, config, and the main worktree's env files and port lease."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from branchyard.config.model import Config
from branchyard.core.errors import BranchyardError
from branchyard.core.identity import dns_label, project_label, worktree_host
from branchyard.envfiles.files import main_env_files, read_env_files
from branchyard.ledger import LedgerState
from branchyard.system.mainports import app_port_name, main_ports, port_names
from branchyard.system.ports import registry_path

# every worktree of a repository: (path, how to call it, its ports, its app port), so
# the 502 page can tell which server listens on the wrong port
SiteMap = tuple[tuple[str, str, tuple[int, ...], int], ...]


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
    site: SiteMap = ()


@dataclass(frozen=True)
class RepoSite:
    """One repository's hosts, built from its ledger, config and main env files."""

    common_dir: Path
    project: str
    tld: str = "localhost"
    hosts: dict[str, Backend] = field(default_factory=dict)
    errors: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Worktree:
    """One worktree as its backends are made from it."""

    slug: str  # "main" for the main worktree
    branch: str
    called: str  # how the 502 page calls it
    path: str
    subdomain: str | None  # None: the main worktree
    ports: dict[str, int]
    app: str  # the name of the port its own host routes to


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


def config_files(main: Path) -> list[Path]:
    """The files a repository's config is read from."""
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
    project = project_label(config.project.name or repo_name(common_dir))
    tld = config.proxy.tld
    names = port_names(config)
    records = sorted(state.worktrees.values(), key=lambda r: r.index)
    worktrees = [_Worktree("main", "(main worktree)", "the main worktree",
                           str(main_path_of(common_dir)), None,
                           main_site_ports(common_dir, config), names[0]),
                 *(_Worktree(r.slug, r.branch, r.branch, r.path, r.subdomain, r.ports,
                             app_port_name(config, r.ports)) for r in records)]
    site = tuple((w.path, w.called, tuple(w.ports.values()), w.ports.get(w.app, 0))
                 for w in worktrees)
    run = run_hint(config)
    hosts: dict[str, Backend] = {}
    for wt in worktrees:
        for name, port in wt.ports.items():
            service = "" if name == wt.app else service_label(name)
            label = service_host_label(service, wt.subdomain) if service else wt.subdomain
            host = worktree_host(label, project, tld)
            hosts[host] = Backend(host, port, wt.slug, wt.branch, wt.path, service,
                                  f"cd {wt.path} && {run}", wt.subdomain or "", site)
    return RepoSite(common_dir, project, tld, hosts)


