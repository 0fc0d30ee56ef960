"""Which worktrees are live, which branch each one merges into, and where the
repository is — the inputs of the radar, the merge and the queue."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from branchyard.config.load import load_config
from branchyard.config.model import Config
from branchyard.core.errors import MergeError
from branchyard.core.identity import slug_for
from branchyard.core.paths import is_inside
from branchyard.ledger import Ledger, LedgerState
from branchyard.merge.scratch import is_scratch
from branchyard.repo import git
from branchyard.repo.locate import Names, find_by_name


@dataclass(frozen=True)
class Worktree:
    """A live (non-main, non-prunable) worktree as the merge area sees it."""

    path: Path
    branch: str | None  # None when detached
    head: str
    slug: str
    base: str  # the branch it merges into
    subdomain: str = ""  # "" when branchyard has not set it up

    @property
    def name(self) -> str:
        """How people call it: the branch, or the directory when detached."""
        return self.branch or self.path.name


@dataclass(frozen=True)
class Holder:
    """The worktree a command runs in, as the holder of locks."""

    slug: str
    name: str
    root: Path


@dataclass(frozen=True)
class Repo:
    """A repository's worktrees with their bases, read once per command."""

    common_dir: Path
    main_path: Path
    main_branch: str | None
    config: Config
    worktrees: tuple[Worktree, ...]

    def find(self, name: str) -> Worktree | None:
        """The worktree NAME means (:func:`branchyard.repo.locate.find_by_name`)."""
        hit = find_by_name(name, [Names(w.path, w.branch, w.slug, w.subdomain)
                                  for w in self.worktrees])
        return self.worktrees[hit] if hit is not None else None

    def branch_of(self, name: str) -> str:
        """The branch NAME means: a local branch, else the branch of the worktree
        NAME means (slug, subdomain, directory or path); else ``name`` as given."""
        if git.branch_exists(name, self.common_dir):
            return name
        found = self.find(name)
        return found.branch if found is not None and found.branch else name

    def holder_of(self, path: Path) -> Holder:
        """The worktree containing ``path`` (the main one included)."""
        real = os.path.realpath(path)
        for wt in self.worktrees:
            root = os.path.realpath(wt.path)
            if is_inside(real, root):
                return Holder(wt.slug, wt.name, Path(root))
        name = self.main_branch or self.main_path.name
        return Holder(slug_for(name), name, Path(os.path.realpath(self.main_path)))

    def relative(self, path: Path) -> tuple[Holder, str]:
        """The worktree holding ``path`` and the path relative to its root."""
        holder = self.holder_of(path)
        real = os.path.realpath(path)
        rel = os.path.relpath(real, holder.root)
        if rel == os.curdir or not is_inside(real, holder.root):
            raise MergeError(f"{path} is not a file inside a worktree of this repository",
                             hint="name a path inside the repository")
        return holder, rel.replace(os.sep, "/")


def load_repo(cwd: Path) -> Repo:
    """Discover the repository around ``cwd`` and its live worktrees."""
    common = git.common_dir(cwd)
    entries = git.worktrees(cwd)
    main = entries[0]
    config, _ = load_config(main.path)
    state = Ledger(common).read()
    base = functools.cache(lambda recorded: git.base_branch(recorded, config.project.base,
                                                            main.path))  # git asked once
    live = tuple(_worktree(e, state, base) for e in entries[1:]
                 if not e.prunable and not e.bare and e.head and not is_scratch(common, e.path))
    return Repo(common, main.path, main.branch, config, live)


def _worktree(entry: git.WorktreeEntry, state: LedgerState,
              base_of: Callable[[str], str]) -> Worktree:
    record = state.by_path(entry.path)
    slug = record.slug if record else slug_for(entry.branch or entry.path.name)
    base = base_of(record.base if record else "")
    return Worktree(entry.path, entry.branch, entry.head, slug, base,
                    record.subdomain if record else "")


def base_tip(repo: Repo, base: str) -> str:
    """The commit the base branch points to, or a clear error."""
    return branch_tip(repo, base, missing=f"the base branch `{base}` does not exist",
                      hint="set `[project] base` in branchyard.toml to an existing branch")


def branch_tip(repo: Repo, branch: str, *, missing: str, hint: str) -> str:
    """The commit ``branch`` points to; :class:`MergeError` (``missing``, ``hint``)
    when there is no such branch."""
    tip = git.rev_parse(f"refs/heads/{branch}", repo.common_dir)
    if tip is None:
        raise MergeError(missing, hint=hint)
    return tip
