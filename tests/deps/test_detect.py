from __future__ import annotations

from pathlib import Path

import pytest

from branchyard.config.load import load_config
from branchyard.config.model import DepsConfig
from branchyard.deps.detect import detect_deps, detect_package_manager, render_deps_toml


def _manager_name(root: Path) -> str | None:
    manager = detect_package_manager(root)
    return manager.name if manager is not None else None


def _touch(root: Path, *names: str) -> None:
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("{}\n" if name.endswith(".json") else "x\n")


@pytest.mark.parametrize(("lockfile", "install", "manager"), [
    ("package-lock.json", "npm ci", "npm"),
    ("pnpm-lock.yaml", "pnpm install --frozen-lockfile", "pnpm"),
    ("yarn.lock", "yarn install --frozen-lockfile", "yarn"),
    ("bun.lockb", "bun install --frozen-lockfile", "bun"),
    ("bun.lock", "bun install --frozen-lockfile", "bun"),
])
def test_node_projects(tmp_path: Path, lockfile: str, install: str, manager: str) -> None:
    _touch(tmp_path, "package.json", lockfile)
    assert detect_deps(tmp_path) == [DepsConfig("node_modules", (lockfile,), install)]
    assert _manager_name(tmp_path) == manager


def test_pnpm_wins_over_a_stale_npm_lockfile_and_berry_gets_immutable(tmp_path: Path) -> None:
    _touch(tmp_path, "package.json", "package-lock.json", "pnpm-lock.yaml")
    assert detect_deps(tmp_path)[0].lockfiles == ("pnpm-lock.yaml",)
    berry = tmp_path / "berry"
    _touch(berry, "package.json", "yarn.lock", ".yarnrc.yml")
    assert detect_deps(berry)[0].install == "yarn install --immutable"


def test_package_manager_field_wins(tmp_path: Path) -> None:
    _touch(tmp_path, "package-lock.json")
    (tmp_path / "package.json").write_text('{"packageManager": "pnpm@9.1.0"}')
    assert _manager_name(tmp_path) == "pnpm"


def test_python_ruby_and_rust(tmp_path: Path) -> None:
    _touch(tmp_path, "uv.lock", "Gemfile", "Gemfile.lock", "Cargo.lock", "vendor/bundle/x")
    assert detect_deps(tmp_path) == [
        DepsConfig(".venv", ("uv.lock",), "uv sync --frozen"),
        DepsConfig("vendor/bundle", ("Gemfile.lock",), "bundle install"),
        DepsConfig("target", ("Cargo.lock",), "cargo build"),
    ]
    assert _manager_name(tmp_path) == "uv"


def test_gems_outside_the_worktree_and_empty_repos_propose_nothing(tmp_path: Path) -> None:
    _touch(tmp_path, "Gemfile", "Gemfile.lock")
    assert detect_deps(tmp_path) == []
    assert _manager_name(tmp_path) == "bundler"
    assert detect_package_manager(tmp_path / "nothing") is None


def test_rendered_toml_loads_back_into_the_same_config(tmp_path: Path) -> None:
    _touch(tmp_path, "package.json", "pnpm-lock.yaml", "uv.lock")
    found = detect_deps(tmp_path)
    (tmp_path / "branchyard.toml").write_text(render_deps_toml(found))

    config, _ = load_config(tmp_path)

    assert list(config.deps) == found
    assert render_deps_toml([]) == ""
