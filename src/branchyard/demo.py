"""`branchyard demo`: a sample repository with two worktrees side by side."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from branchyard.core.events import NullReporter, Reporter

DEMO_BRANCHES = ("feat/checkout", "fix/login-bug")
GITIGNORE = ".env.local\n.env.development.local\nagent-browser.json\nnode_modules/\n"
APP = '''"""A tiny app: prints which database and URL this worktree got."""
import os

print("url      ", os.environ.get("BRANCHYARD_URL"))
print("database ", os.environ.get("DATABASE_URL", "(none)"))
'''


@dataclass(frozen=True)
class DemoWorktree:
    branch: str
    path: str
    slug: str
    subdomain: str
    url: str
    ports: dict[str, int]
    databases: list[dict[str, object]]
    env: dict[str, str]
    rows: int | None  # rows of the sample table in this worktree's own database


@dataclass(frozen=True)
class DemoResult:
    root: str
    repo: str
    worktrees: tuple[DemoWorktree, ...]
    with_database: bool
    kept: bool


def demo_config(with_database: bool) -> str:
    text = """\
[project]
name = "shop"
worktree_path = "../worktrees/{slug}"

[env]
shared = [".env.local"]

[env.vars]
BETTER_AUTH_URL = "{url}"
API_URL = "http://{addr.API_PORT}"

[ports]
names = ["PORT", "API_PORT"]

[browser]
session_file = "agent-browser.json"

[hooks]
setup = ["echo 'installing dependencies (demo hook)'"]
run = "python3 app.py"
"""
    if with_database:
        text += '\n[[database]]\nname = "app"\nengine = "postgres"\n'
    return text


def make_sample_repo(root: Path, with_database: bool) -> Path:
    repo = root / "shop"
    repo.mkdir(parents=True)
    files = {"README.md": "# shop\n", ".gitignore": GITIGNORE, "app.py": APP,
             "branchyard.toml": demo_config(with_database)}
    for name, text in files.items():
        (repo / name).write_text(text, encoding="utf-8")
    env = {"GIT_AUTHOR_NAME": "branchyard demo", "GIT_AUTHOR_EMAIL": "demo@example.invalid",
           "GIT_COMMITTER_NAME": "branchyard demo",
           "GIT_COMMITTER_EMAIL": "demo@example.invalid", "PATH": _path()}
    for argv in (["git", "init", "-q", "-b", "main"], ["git", "add", "-A"],
                 ["git", "commit", "-q", "-m", "A sample app"]):
        subprocess.run(argv, cwd=repo, env=env, check=True, capture_output=True, timeout=60)
    (repo / ".env.local").write_text("STRIPE_KEY=sk_test_demo\nPORT=3000\n", encoding="utf-8")
    return repo


def _path() -> str:
    import os

    return os.environ.get("PATH", "/usr/bin:/bin")


def database_available() -> bool:
    from branchyard.db.managed import find_bin_dir

    return find_bin_dir() is not None


def run_demo(*, keep: bool = False, with_database: bool | None = None,
             reporter: Reporter | None = None) -> DemoResult:
    """Build the sample repo, bring up two worktrees, describe them, and (unless
    ``keep``) tear everything down again."""
    from branchyard import api

    reporter = reporter or NullReporter()
    use_db = database_available() if with_database is None else with_database
    root = Path(tempfile.mkdtemp(prefix="branchyard-demo-"))
    repo = make_sample_repo(root, use_db)
    shown: list[DemoWorktree] = []
    made = ""
    try:
        if use_db:
            with reporter.phase("main database"):
                made = _prepare_database(repo)
        for branch in DEMO_BRANCHES:
            with reporter.phase(f"up {branch}"):
                api.up(api.UpRequest(branch, cwd=repo), reporter)
        views = {v.branch: v for v in api.list_worktrees(repo)}
        for branch in DEMO_BRANCHES:
            view = views[branch]
            env = api.env_of(view.path)
            shown.append(DemoWorktree(branch, view.path, view.slug or "", view.subdomain or "",
                                      view.url or "", view.ports, view.databases,
                                      _masked(env), _count_rows(env) if use_db else None))
    finally:
        if not keep:
            _clean(repo, root, reporter, stop_server=bool(made),
                   remove_cluster=made == "cluster")
    return DemoResult(str(root), str(repo), tuple(shown), use_db, keep)


def _prepare_database(repo: Path) -> str:
    """Start the managed Postgres (if needed), create the main database and put a
    few rows in it. Returns what the demo made: "cluster" (it did not exist),
    "server" (it was stopped) or ""."""
    from branchyard.context import open_context
    from branchyard.db import mainenv, managed, serverstate

    existed = serverstate.load_state() is not None
    was_running = existed and managed.status().running
    ctx = open_context(repo)
    mains = mainenv.prepare_main(ctx.repo, ctx.config)
    mainenv.seed_demo_rows(mains.urls["DATABASE_URL"])
    return "" if was_running else "server" if existed else "cluster"


def _count_rows(env: dict[str, str]) -> int | None:
    from branchyard.db import postgres as pg

    url = env.get("DATABASE_URL")
    if not url:
        return None
    with pg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM notes").fetchone()
    return int(row[0]) if row else 0


def _masked(env: dict[str, str]) -> dict[str, str]:
    from branchyard.db.urls import mask_url

    return {k: mask_url(v) if "://" in v and "@" in v else v for k, v in env.items()}


def _clean(repo: Path, root: Path, reporter: Reporter, *, stop_server: bool,
           remove_cluster: bool = False) -> None:
    from branchyard import api

    for branch in DEMO_BRANCHES:
        with reporter.phase(f"down {branch}"):
            try:
                api.down(api.DownRequest(branch, force=True, cwd=repo), reporter)
            except api.BranchyardError:
                continue  # never made (an earlier step failed)
    if (repo / "branchyard.toml").read_text(encoding="utf-8").count("[[database]]"):
        with reporter.phase("databases"):
            _drop_demo_databases(repo, stop_server=stop_server)
        if remove_cluster:  # the demo made the managed server: nothing of it stays
            from branchyard.db import managed

            managed.remove_cluster()
    from branchyard.proxy.registry import unregister_repo

    unregister_repo(repo / ".git")  # the proxy never serves the thrown-away repository
    from branchyard.system.mainports import main_owner
    from branchyard.system.ports import release_ports

    release_ports(main_owner((repo / ".git").resolve()))  # `ls` leased main's port
    shutil.rmtree(root, ignore_errors=True)


def _drop_demo_databases(repo: Path, *, stop_server: bool) -> None:
    """The demo's repository is thrown away: its main database and snapshot go too."""
    from branchyard.context import open_context
    from branchyard.db import mainenv, managed, upkeep

    ctx = open_context(repo)
    upkeep.remove_project_databases(ctx.repo.common_dir)
    mainenv.drop_managed_mains(ctx.repo, ctx.config)
    if stop_server:
        managed.stop()
