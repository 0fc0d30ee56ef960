"""A worktree's dev URL as the user and its app see it: URL, host, loopback forms."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from branchyard.config.model import Config, ProxyConfig
from branchyard.core.errors import WorktreeError
from branchyard.core.identity import worktree_host, worktree_url
from branchyard.system.mainports import app_port_name


@dataclass(frozen=True)
class Site:
    """Where one worktree's app is reached (``slug`` None: the main worktree)."""

    url: str
    host: str
    branch: str
    slug: str | None
    path: Path
    port: int  # the app port behind the URL
    ports: Mapping[str, int] = field(default_factory=dict)


def site_url(subdomain: str | None, project: str, proxy: ProxyConfig) -> str:
    return worktree_url(subdomain, project, port=proxy.port, https=proxy.https,
                        tld=proxy.tld)


def url_env(subdomain: str | None, project: str, ports: Mapping[str, int],
            config: Config) -> dict[str, str]:
    """Variables a worktree's env gets for its dev URL (pure).

    ``BRANCHYARD_URL`` is the browser-facing origin (for ``BETTER_AUTH_URL``-style
    vars via ``{url}``); the ``*_LOCAL_URL`` forms are ``http://127.0.0.1:<port>``
    for server-side clients that cannot resolve ``*.localhost``.
    """
    from branchyard.proxy.backends import service_host_label, service_label  # `ls` needs none

    proxy = config.proxy
    app = app_port_name(config, ports)
    env = {"BRANCHYARD_URL": site_url(subdomain, project, proxy),
           "BRANCHYARD_HOST": worktree_host(subdomain, project, proxy.tld)}
    if app in ports:
        env["BRANCHYARD_LOCAL_URL"] = f"http://127.0.0.1:{ports[app]}"
        env["BRANCHYARD_LOCAL_HOST"] = f"127.0.0.1:{ports[app]}"
    for name, port in ports.items():
        if name == app:
            continue
        label = service_label(name)
        key = label.upper().replace("-", "_")
        env[f"BRANCHYARD_{key}_URL"] = site_url(service_host_label(label, subdomain),
                                                project, proxy)
        env[f"BRANCHYARD_{key}_LOCAL_URL"] = f"http://127.0.0.1:{port}"
    return env


def _main_branch(main_path: Path) -> str | None:
    from branchyard.repo import git

    return git.current_branch(main_path)


def find_site(common_dir: Path, main_path: Path, project: str, config: Config,
              branch: str | None, here: Path | None) -> Site:
    """The site of ``branch``, or of the worktree at ``here`` (main if neither)."""
    from branchyard.ledger import Ledger

    state = Ledger(common_dir).read()
    rec = None
    if branch is not None:
        rec = state.by_branch(branch)
        if rec is None and branch in (_head_branch(common_dir), str(main_path)):
            return _main_site(common_dir, main_path, project, config)
        if rec is None:
            raise WorktreeError(f"no branchyard worktree for branch {branch!r}",
                                hint="`branchyard ls` lists them; `branchyard up "
                                     f"{branch}` creates one")
    elif here is not None and here.resolve() != main_path.resolve():
        rec = state.by_path(here)
        if rec is None:
            raise WorktreeError(f"the worktree {here} is not set up by branchyard",
                                hint="run `branchyard setup` in it")
    if rec is None:
        return _main_site(common_dir, main_path, project, config)
    port = rec.ports.get(app_port_name(config, rec.ports), 0)
    return Site(site_url(rec.subdomain, project, config.proxy),
                worktree_host(rec.subdomain, project, config.proxy.tld), rec.branch,
                rec.slug, Path(rec.path), port, dict(rec.ports))


def _main_site(common_dir: Path, main_path: Path, project: str, config: Config) -> Site:
    from branchyard.proxy.backends import main_site_ports

    names = config.ports.names or ("PORT",)
    ports = main_site_ports(common_dir, config)
    return Site(site_url(None, project, config.proxy),
                worktree_host(None, project, config.proxy.tld), "(main worktree)", None,
                main_path, ports.get(names[0], 0), ports)


def _head_branch(common_dir: Path) -> str:
    """The branch checked out in the main worktree (its HEAD; no git call)."""
    try:
        head = (common_dir / "HEAD").read_text(encoding="utf-8").strip()
    except OSError:
        return ""
    return head.removeprefix("ref: refs/heads/") if head.startswith("ref: ") else ""
