"""Finding the repository, its main worktree, the worktree a path is in, and the
worktree a NAME means.

Discovery reads ``.git`` files directly (no git subprocess), so fast commands
such as ``env`` and ``ls`` start at once; anything unusual falls back to git.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from branchyard.config.model import Config
from branchyard.core.errors import NotARepoError
from branchyard.core.identity import project_label
from branchyard.repo import git


@dataclass(frozen=True)
class RepoInfo:
    """Where a repository is: absolute paths, valid from any of its worktrees."""

    common_dir: Path  # <git-common-dir>
    main_path: Path  # the main worktree (for a bare repo: the bare directory)
    name: str  # repository directory name
    project: str  # DNS label of the project name
    bare: bool = False


@dataclass(frozen=True)
class Location:
    """Where a path sits in a repository."""

    common_dir: Path
    main_path: Path  # the main worktree, or the bare repository directory
    worktree: Path | None  # top of the worktree containing the path; None in .git/bare
    bare: bool

    @property
    def in_linked_worktree(self) -> bool:
        return self.worktree is not None and self.worktree != self.main_path


@dataclass(frozen=True)
class Names:
    """What a worktree answers to as NAME, in every command."""

    path: Path
    branch: str | None = None
    slug: str = ""
    subdomain: str = ""


def find_by_name(name: str, worktrees: Sequence[Names]) -> int | None:
    """Which of ``worktrees`` NAME means, the same in every command: a branch, else a
    slug or subdomain, else a directory name, else a path (relative to the current
    directory); the first worktree that matches wins. None when none does."""
    if not name:
        return None
    tiers = ((lambda w: name == w.branch), (lambda w: name in (w.slug, w.subdomain)),
             (lambda w: name == w.path.name))
    for matches in tiers:
        hit = next((i for i, w in enumerate(worktrees) if matches(w)), None)
        if hit is not None:
            return hit
    wanted = os.path.realpath(name)
    return next((i for i, w in enumerate(worktrees) if os.path.realpath(w.path) == wanted),
                None)


def locate(start: Path | str | None = None) -> Location:
    """The repository containing ``start`` (default: the current directory)."""
    here = Path(os.path.abspath(start if start is not None else os.getcwd()))
    for folder in (here, *here.parents):
        dot_git = folder / ".git"
        if dot_git.is_dir():
            return _from_common(dot_git.resolve(), folder.resolve())
        if dot_git.is_file():
            found = _from_gitfile(dot_git, folder.resolve())
            if found is not None:
                return found
            break
    return _from_git(here)


def _from_gitfile(dot_git: Path, worktree: Path) -> Location | None:
    match = re.match(r"gitdir:\s*(.+)", dot_git.read_text(encoding="utf-8", errors="replace"))
    if not match:
        return None
    gitdir = (dot_git.parent / match.group(1).strip()).resolve()
    commondir_file = gitdir / "commondir"
    if not commondir_file.is_file():
        # A submodule or a separate git dir: its own repository.
        return _from_common(gitdir, worktree)
    common = (gitdir / commondir_file.read_text(encoding="utf-8").strip()).resolve()
    return _from_common(common, worktree)


def _from_common(common: Path, worktree: Path | None) -> Location:
    bare = _is_bare(common)
    if bare:
        main = common
    elif common.name == ".git":
        main = common.parent
    else:  # separate git dir: ask git once where the main worktree is
        main = git.worktrees(worktree or common)[0].path
    return Location(common, main, worktree, bare)


def _is_bare(common: Path) -> bool:
    try:
        text = (common / "config").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return re.search(r"^\s*bare\s*=\s*true\s*$", text, re.MULTILINE | re.IGNORECASE) is not None


def _from_git(here: Path) -> Location:
    common = git.common_dir(here)  # raises NotARepoError
    done = git.git(["rev-parse", "--show-toplevel"], here, check=False)
    top = Path(done.stdout.strip()).resolve() if done.returncode == 0 else None
    return _from_common(common.resolve(), top)


def repo_info(loc: Location, config: Config) -> RepoInfo:
    name = loc.main_path.name
    if loc.bare and name.endswith(".git"):
        name = name[:-4] or "repo"
    return RepoInfo(
        common_dir=loc.common_dir,
        main_path=loc.main_path,
        name=name,
        project=project_label(config.project.name or name),
        bare=loc.bare,
    )


def require_worktree(loc: Location) -> Path:
    if loc.worktree is None:
        raise NotARepoError(
            "this command must run inside a worktree, not in the git directory",
            hint="cd into a worktree of the repository",
        )
    return loc.worktree
