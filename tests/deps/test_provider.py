from __future__ import annotations

import os
from pathlib import Path

import pytest
from depskit import Worktrees

from branchyard.config.model import Config, DepsConfig
from branchyard.core.errors import ConfigError
from branchyard.core.events import NullReporter
from branchyard.core.identity import Identity
from branchyard.providers import get_provider
from branchyard.repo.locate import RepoInfo
from branchyard.resources.plan import PlanContext


def _ctx(wt: Worktrees, *deps: DepsConfig, worktree: Path | None = None) -> PlanContext:
    repo = RepoInfo(common_dir=wt.main / ".git", main_path=wt.main, name="app", project="app")
    return PlanContext(repo=repo, config=Config(deps=deps),
                       identity=Identity("feature", "feature_abc123", "feature", 1),
                       worktree=worktree or wt.worktree, ports={}, url="",
                       reporter=NullReporter())


NODE = DepsConfig(dir="node_modules", lockfiles=("package-lock.json",),
                  install="mkdir -p node_modules && touch node_modules/marker")


def test_plan_records_the_lockfile_hash_and_the_strategy(trees: Worktrees) -> None:
    allocs = get_provider("deps").plan(_ctx(trees, NODE))

    assert [a.key for a in allocs] == ["deps:node_modules"]
    spec = allocs[0].spec
    assert spec.lock_hash == spec.main_lock_hash != ""
    assert (spec.strategy, spec.mode, spec.worktree) == (
        "reuse", "auto", str(trees.worktree))
    assert get_provider("deps").describe(allocs[0])["strategy"] == "reuse"


def test_the_main_worktree_plans_nothing(trees: Worktrees) -> None:
    assert get_provider("deps").plan(_ctx(trees, NODE, worktree=trees.main)) == []


def test_an_unknown_mode_names_the_key(trees: Worktrees) -> None:
    bad = DepsConfig(dir="node_modules", mode="symlink")
    with pytest.raises(ConfigError, match=r"deps\[1\]\.mode: 'symlink'"):
        get_provider("deps").plan(_ctx(trees, NODE, bad))


def test_create_is_idempotent_and_destroy_leaves_main_alone(trees: Worktrees) -> None:
    provider = get_provider("deps")
    ctx = _ctx(trees, NODE)
    alloc = provider.plan(ctx)[0]

    assert not provider.exists(alloc)
    assert provider.create(alloc, ctx) is True
    assert provider.exists(alloc)
    assert provider.create(alloc, ctx) is False
    provider.destroy(alloc)
    provider.destroy(alloc)
    assert provider.env(alloc) == {}
    assert (trees.main / "node_modules" / "pkg1" / "package.json").exists()
    assert (trees.worktree / "node_modules" / "pkg1" / "package.json").exists()


def test_exists_turns_false_when_the_lockfile_changes(tmp_path: Path, trees: Worktrees) -> None:
    provider = get_provider("deps")
    ctx = _ctx(trees, NODE)
    alloc = provider.plan(ctx)[0]
    provider.create(alloc, ctx)
    (trees.worktree / "package-lock.json").write_text("lock v2\n")

    assert not provider.exists(alloc)
    assert provider.create(alloc, _ctx(trees, NODE)) is True
    assert (trees.worktree / "node_modules" / "marker").exists()
    assert not os.path.exists(trees.main / "node_modules" / "marker")


def test_create_follows_todays_config_over_the_recorded_spec(trees: Worktrees) -> None:
    provider = get_provider("deps")
    alloc = provider.plan(_ctx(trees, NODE))[0]  # recorded: auto mode
    now = DepsConfig(dir="node_modules", lockfiles=("package-lock.json",),
                     install="mkdir -p node_modules && touch node_modules/now", mode="install")

    assert provider.create(alloc, _ctx(trees, now)) is True
    assert (trees.worktree / "node_modules" / "now").exists()
