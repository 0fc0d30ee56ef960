"""The context every API call starts from: repository, config, ledger."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from branchyard.config.load import load_config
from branchyard.config.model import Config
from branchyard.ledger import Ledger
from branchyard.repo.locate import Location, RepoInfo, locate, repo_info


@dataclass(frozen=True)
class Context:
    loc: Location
    repo: RepoInfo
    config: Config
    config_files: tuple[Path, ...]

    @property
    def ledger(self) -> Ledger:
        return Ledger(self.repo.common_dir)


def open_context(start: Path | str | None = None, *, main_config: bool = False) -> Context:
    """Locate the repository from ``start`` and load its config.

    The config is read from the worktree the path is in (its committed
    ``branchyard.toml`` may differ per branch), falling back to the main
    worktree's files; ``main_config`` reads the main worktree's first.
    """
    loc = locate(start)
    dirs = [loc.main_path] if main_config or loc.worktree is None else [loc.worktree,
                                                                        loc.main_path]
    config, used = load_config(*dict.fromkeys(dirs))
    return Context(loc, repo_info(loc, config), config, tuple(used))
