"""What `init` proposes for ``[[deps]]`` and the setup hook, read from the
lockfiles in the main worktree."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

from branchyard.config.model import DepsConfig


@dataclass(frozen=True)
class PackageManager:
    name: str
    lockfile: str
    dir: str
    install: str
    marker: str = ""  # another file that must exist too (package.json, Gemfile…)
    run: str = ""  # how a project script runs with it ("npm run", "uv run" …)


# Most specific first: a repo with both pnpm-lock.yaml and package-lock.json is
# managed by pnpm (the npm lockfile is usually a stale leftover).
_NODE = (
    PackageManager("pnpm", "pnpm-lock.yaml", "node_modules", "pnpm install --frozen-lockfile",
                   "package.json", "pnpm"),
    PackageManager("bun", "bun.lock", "node_modules", "bun install --frozen-lockfile",
                   "package.json", "bun run"),
    PackageManager("bun", "bun.lockb", "node_modules", "bun install --frozen-lockfile",
                   "package.json", "bun run"),
    PackageManager("yarn", "yarn.lock", "node_modules", "yarn install --frozen-lockfile",
                   "package.json", "yarn"),
    PackageManager("npm", "package-lock.json", "node_modules", "npm ci", "package.json",
                   "npm run"),
)
_OTHERS = (
    PackageManager("uv", "uv.lock", ".venv", "uv sync --frozen", run="uv run"),
    PackageManager("poetry", "poetry.lock", ".venv", "poetry install --no-root",
                   run="poetry run"),
    PackageManager("pip", "requirements.txt", ".venv",
                   "python3 -m venv .venv && .venv/bin/python -m pip install -r requirements.txt"),
    PackageManager("bundler", "Gemfile.lock", "vendor/bundle", "bundle install", "Gemfile",
                   "bundle exec"),
    PackageManager("cargo", "Cargo.lock", "target", "cargo build", run="cargo run"),
)
_YARN_BERRY_INSTALL = "yarn install --immutable"


def detect_deps(main_path: Path) -> list[DepsConfig]:
    """One ``[[deps]]`` entry per ecosystem found at the root of ``main_path``."""
    found: list[DepsConfig] = []
    node = _first_present(main_path, _NODE)
    if node is not None:
        found.append(DepsConfig(dir=node.dir, lockfiles=(node.lockfile,),
                                install=_node_install(main_path, node)))
    for manager in _OTHERS:
        if _present(main_path, manager) and _wanted(main_path, manager) \
                and manager.dir not in {entry.dir for entry in found}:
            found.append(DepsConfig(dir=manager.dir, lockfiles=(manager.lockfile,),
                                    install=manager.install))
    return found


def detect_package_manager(main_path: Path) -> PackageManager | None:
    """The package manager a setup hook should run, or None. package.json's
    ``packageManager`` field (corepack) wins over lockfiles."""
    declared = _declared_manager(main_path)
    if declared:
        return next(m for m in _NODE if m.name == declared)
    manager = _first_present(main_path, _NODE + _OTHERS)
    if manager is not None and manager.dir == "node_modules":
        return replace(manager, install=_node_install(main_path, manager))
    return manager


def render_deps_toml(entries: list[DepsConfig]) -> str:
    """``[[deps]]`` blocks for a starter branchyard.toml ("" when none)."""
    blocks = []
    for entry in entries:
        lockfiles = ", ".join(json.dumps(name) for name in entry.lockfiles)
        lines = ["[[deps]]", f"dir = {json.dumps(entry.dir)}",
                 f"lockfiles = [{lockfiles}]", f"install = {json.dumps(entry.install)}"]
        if entry.dir == "node_modules":
            lines.append("# smoke = \"node -e 'require(\\\"your-main-dependency\\\")'\"")
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks)


def _first_present(root: Path, managers: tuple[PackageManager, ...]) -> PackageManager | None:
    return next((m for m in managers if _present(root, m)), None)


def _present(root: Path, manager: PackageManager) -> bool:
    if not (root / manager.lockfile).is_file():
        return False
    return not manager.marker or (root / manager.marker).is_file()


def _wanted(root: Path, manager: PackageManager) -> bool:
    """Bundler only installs into vendor/bundle when told to; elsewhere the gems
    live outside the worktree and there is nothing to reuse."""
    if manager.name != "bundler":
        return True
    config = root / ".bundle" / "config"
    return (root / manager.dir).is_dir() or (
        config.is_file() and "vendor/bundle" in config.read_text(errors="replace"))


def _node_install(root: Path, manager: PackageManager) -> str:
    if manager.name == "yarn" and (root / ".yarnrc.yml").is_file():
        return _YARN_BERRY_INSTALL  # yarn 2+: --frozen-lockfile is deprecated
    return manager.install


def _declared_manager(root: Path) -> str | None:
    try:
        data = json.loads((root / "package.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    field = data.get("packageManager") if isinstance(data, dict) else None
    if not isinstance(field, str) or "@" not in field:
        return None
    name = field.split("@", 1)[0]
    return name if name in {"npm", "pnpm", "yarn", "bun"} else None
