"""The browser provider: a profile per worktree and the session file, undone on destroy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from branchyard.config.model import BrowserConfig, Config
from branchyard.core.errors import ProviderError
from branchyard.core.identity import derive_identity
from branchyard.core.paths import state_dir
from branchyard.providers import get_provider
from branchyard.repo.locate import RepoInfo
from branchyard.resources.plan import PlanContext


def _ctx(repo: Path, worktree: Path, session_file: str = "agent-browser.json") -> PlanContext:
    ident = derive_identity("feat/login")
    return PlanContext(
        repo=RepoInfo(common_dir=repo / ".git", main_path=repo, name="app", project="app"),
        config=Config(browser=BrowserConfig(session_file=session_file)),
        identity=ident, worktree=worktree, ports={"PORT": 41000},
        url="http://feat-login.app.localhost:1355")


def test_create_is_idempotent_and_destroy_removes_both(repo: Path, tmp_path: Path) -> None:
    worktree = tmp_path / "wt"
    worktree.mkdir()
    ctx = _ctx(repo, worktree)
    provider = get_provider("browser")
    [alloc] = provider.plan(ctx)
    assert provider.plan(ctx) == [alloc]  # pure
    profile = Path(alloc.spec.profile)
    assert profile.is_relative_to(state_dir() / "browsers")
    assert profile.name == ctx.identity.slug
    assert not provider.exists(alloc)

    assert provider.create(alloc, ctx) is True
    assert provider.create(alloc, ctx) is False
    assert provider.exists(alloc)
    assert profile.is_dir()
    session = json.loads((worktree / "agent-browser.json").read_text())
    assert session == {"sessionName": f"app-{ctx.identity.slug}"}
    assert provider.env(alloc) == {"BRANCHYARD_BROWSER_PROFILE": str(profile),
                                   "BRANCHYARD_BROWSER_SESSION": f"app-{ctx.identity.slug}"}
    assert provider.describe(alloc)["session"] == f"app-{ctx.identity.slug}"

    provider.destroy(alloc)
    provider.destroy(alloc)  # already gone is fine
    assert not profile.exists()
    assert not (worktree / "agent-browser.json").exists()


def test_session_file_keeps_other_keys_and_foreign_files_survive(
        repo: Path, tmp_path: Path) -> None:
    worktree = tmp_path / "wt"
    worktree.mkdir()
    ctx = _ctx(repo, worktree)
    provider = get_provider("browser")
    [alloc] = provider.plan(ctx)
    path = worktree / "agent-browser.json"
    path.write_text('{"sessionName": "app", "headed": true}')  # copied from main
    assert provider.create(alloc, ctx) is True
    assert json.loads(path.read_text()) == {"sessionName": f"app-{ctx.identity.slug}",
                                            "headed": True}
    provider.destroy(alloc)
    assert json.loads(path.read_text()) == {"headed": True}
    path.write_text('{"sessionName": "someone-else"}')
    provider.destroy(alloc)
    assert json.loads(path.read_text()) == {"sessionName": "someone-else"}


def test_a_session_file_that_is_not_json_is_not_overwritten(repo: Path,
                                                             tmp_path: Path) -> None:
    ctx = _ctx(repo, tmp_path)
    (tmp_path / "agent-browser.json").write_text("my notes")
    provider = get_provider("browser")
    [alloc] = provider.plan(ctx)
    with pytest.raises(ProviderError, match="not a JSON object"):
        provider.create(alloc, ctx)
    assert (tmp_path / "agent-browser.json").read_text() == "my notes"


def test_without_session_file_only_the_profile_is_made(repo: Path, tmp_path: Path) -> None:
    worktree = tmp_path / "wt"
    worktree.mkdir()
    ctx = _ctx(repo, worktree, session_file="")
    provider = get_provider("browser")
    [alloc] = provider.plan(ctx)
    assert provider.create(alloc, ctx) is True
    assert list(worktree.iterdir()) == []
    assert Path(alloc.spec.profile).is_dir()
    provider.destroy(alloc)
    assert not Path(alloc.spec.profile).exists()
