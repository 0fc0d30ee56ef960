"""Routes come from the ledger, the config and the main worktree's env files."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from proxykit import add_worktree, remove_worktree

from branchyard.config.model import Config
from branchyard.core.errors import ProxyError
from branchyard.ledger import Ledger
from branchyard.proxy.backends import service_label
from branchyard.proxy.registry import known_repos, register_repo, registry_path
from branchyard.proxy.routes import LEDGER_RECHECK, RouteTable, normalize_host
from branchyard.system.mainports import main_ports
from branchyard.system.ports import all_leases, owner_key


def _table() -> RouteTable:
    return RouteTable(known_repos, registry_path(), clock=lambda: 0.0)


def test_register_is_idempotent_and_skips_deleted_repos(tmp_path: Path,
                                                        common_dir: Path) -> None:
    assert register_repo(common_dir) is True
    assert register_repo(common_dir) is False
    gone = tmp_path / "gone" / ".git"
    gone.mkdir(parents=True)
    register_repo(gone)
    gone.rmdir()
    assert known_repos() == [common_dir]
    assert json.loads(registry_path().read_text())["repos"] == sorted(
        [str(common_dir), str(gone)])


def test_corrupt_registry_is_reported_and_routes_survive(common_dir: Path) -> None:
    add_worktree(common_dir, "feat/x", {"PORT": 41001})
    now = [0.0]
    table = RouteTable(known_repos, registry_path(), clock=lambda: now[0])
    assert table.resolve("feat-x.app.localhost") is not None
    registry_path().write_text("{not json")
    with pytest.raises(ProxyError, match="unreadable"):
        known_repos()
    now[0] = 10.0  # the registry is checked again
    assert table.resolve("feat-x.app.localhost") is not None  # the known routes stay
    assert "unreadable" in table.errors[0]


def test_hosts_follow_the_ledger(common_dir: Path) -> None:
    now = [0.0]
    table = RouteTable(known_repos, registry_path(), clock=lambda: now[0])
    assert table.resolve("feat-x.app.localhost") is None
    rec = add_worktree(common_dir, "feat/x", {"PORT": 41001, "API_PORT": 41002})
    backend = table.resolve("feat-x.app.localhost:1355")  # a new host: no clock tick needed
    assert backend is not None
    assert (backend.port, backend.branch, backend.worktree) == (41001, "feat/x", rec.slug)
    api = table.resolve("api.feat-x.app.localhost")
    assert api is not None
    assert (api.port, api.service) == (41002, "api")
    remove_worktree(common_dir, rec.slug)
    assert table.resolve("feat-x.app.localhost") == backend  # served from the table...
    now[0] += LEDGER_RECHECK
    assert table.resolve("feat-x.app.localhost") is None  # ...until the next check


def test_a_moved_worktree_is_routed_with_its_new_path(repo: Path, common_dir: Path) -> None:
    old, new = repo.parent / "wt-old", repo.parent / "moved" / "wt-new"
    subprocess.run(["git", "worktree", "add", "-q", "-b", "feat/m", str(old)], cwd=repo,
                   check=True)
    add_worktree(common_dir, "feat/m", {"PORT": 41003}, path=old)
    with Ledger(common_dir).update():
        pass  # any later ledger update records git's id of the worktree
    now = [0.0]
    table = RouteTable(known_repos, registry_path(), clock=lambda: now[0])
    backend = table.resolve("feat-m.app.localhost")
    assert backend is not None and backend.path == str(old)
    stored = Ledger(common_dir).path.read_text()
    new.parent.mkdir()
    subprocess.run(["git", "worktree", "move", str(old), str(new)], cwd=repo, check=True)
    now[0] += LEDGER_RECHECK
    backend = table.resolve("feat-m.app.localhost")
    assert backend is not None and (backend.path, backend.port) == (str(new), 41003)
    assert str(new) in backend.run_hint
    assert Ledger(common_dir).path.read_text() == stored  # the proxy never writes it


def test_project_name_and_main_ports_come_from_config_and_env(
        repo: Path, common_dir: Path) -> None:
    (repo / "branchyard.toml").write_text(
        '[project]\nname = "My Shop"\n[ports]\nnames = ["WEB_PORT", "API_PORT"]\n'
        '[env]\nshared = [".env.shared"]\n[hooks]\nrun = "npm run dev"\n')
    (repo / ".env").write_text("WEB_PORT=4000\n")
    (repo / ".env.shared").write_text("WEB_PORT=4100\nAPI_PORT=4200\n")
    register_repo(common_dir)
    table = _table()
    main = table.resolve("my-shop.localhost")
    assert main is not None
    assert (main.port, main.worktree) == (4100, "main")
    # bare `branchyard run` runs `[hooks] run` through the shell, so the hint is that
    assert main.run_hint == f"cd {repo} && branchyard run"
    api = table.resolve("api.my-shop.localhost")
    assert api is not None
    assert api.port == 4200
    add_worktree(common_dir, "feat/y", {"WEB_PORT": 41010, "API_PORT": 41011})
    web = table.resolve("feat-y.my-shop.localhost")
    assert web is not None
    assert web.port == 41010  # the first named port is the app port


def test_main_is_routed_to_its_lease_when_its_env_files_set_no_port(
        repo: Path, common_dir: Path) -> None:
    register_repo(common_dir)
    main = _table().resolve("APP.localhost.:1355")
    assert main is not None
    owner = owner_key(common_dir, "@main")
    [lease] = [x for x in all_leases() if x.owner == owner]
    assert (main.port, main.branch, lease.name) == (lease.port, "(main worktree)", "PORT")
    assert main.port != 3000
    assert main.run_hint == f"cd {repo} && branchyard run -- <your dev server command>"
    # the same port `branchyard env` gives main's app
    assert main_ports(common_dir, {}, Config()) == {"PORT": main.port}


def test_mains_route_follows_its_env_file(repo: Path, common_dir: Path) -> None:
    register_repo(common_dir)
    now = [0.0]
    table = RouteTable(known_repos, registry_path(), clock=lambda: now[0])
    first = table.resolve("app.localhost")
    assert first is not None
    (repo / ".env.local").write_text("PORT=4567\n")
    now[0] += 1.0  # env files are re-checked once a second
    backend = table.resolve("app.localhost")
    assert backend is not None and backend.port == 4567


def test_broken_ledger_does_not_break_other_repos(tmp_path: Path, common_dir: Path) -> None:
    other = tmp_path / "other" / ".git"
    subprocess.run(["git", "init", "-q", str(other.parent)], check=True)
    add_worktree(other, "feat/z", {"PORT": 41020})
    (common_dir / "branchyard").mkdir()
    (common_dir / "branchyard" / "ledger.json").write_text("{corrupt")
    register_repo(common_dir)
    table = _table()
    assert table.resolve("feat-z.other.localhost") is not None
    assert any("corrupt" in e for e in table.errors)


def test_names() -> None:
    assert service_label("API_PORT") == "api"
    assert service_label("VITE_HMR_PORT") == "vite-hmr"
    assert normalize_host("Feat.App.localhost:1355") == "feat.app.localhost"
    assert normalize_host("[::1]:80") == "[::1]"


def test_the_proxy_reads_mains_port_as_setup_does(repo: Path, common_dir: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """One reader of main's env files: the documented order (`.env`,
    `.env.development`, `.env.local`, `.env.development.local`, then `[env] shared`;
    last wins) and `${VAR}` expanded from the files alone, never the process's env."""
    from branchyard.config.load import load_config
    from branchyard.envfiles.files import main_env_files, read_env_files

    (repo / "branchyard.toml").write_text(
        '[ports]\nnames = ["PORT", "API_PORT"]\n[env]\nshared = ["config.env"]\n')
    (repo / ".env").write_text("APP_PORT=4300\nAPI_PORT=${APP_PORT}\n")
    (repo / ".env.local").write_text("PORT=4100\n")
    (repo / "config.env").write_text("PORT=4200\n")
    monkeypatch.setenv("APP_PORT", "4999")  # the proxy's own environment does not count
    register_repo(common_dir)
    config, _ = load_config(repo)

    setup = read_env_files(main_env_files(repo, config.env.shared))
    main = _table().resolve("app.localhost")
    api = _table().resolve("api.app.localhost")

    assert (setup["PORT"], setup["API_PORT"]) == ("4200", "4300")
    assert main is not None and main.port == 4200
    assert api is not None and api.port == 4300
