"""Shared env files and configured paths, linked or copied from the main worktree.

- ``[env] shared`` and ``[files] symlink``: symlinks to the main worktree's file,
  so a secret rotated in main reaches every worktree. A shared env file that sets
  one of the worktree's variables becomes a generated copy once the worktree's
  env is known (:mod:`branchyard.envfiles.shared`); the link's resource covers it.
- ``[files] copy`` and the gitignored files listed in ``.worktreeinclude``: copies,
  so each worktree may change its own (``.vercel`` project links, local certs).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from branchyard.core.errors import ProviderError
from branchyard.envfiles import shared as sharedenv
from branchyard.repo import git
from branchyard.resources.plan import Allocation, PlanContext
from branchyard.resources.specs import FilesSpec

WORKTREEINCLUDE = ".worktreeinclude"


class FilesProvider:
    kind = "files"

    def plan(self, ctx: PlanContext) -> list[Allocation[FilesSpec]]:
        main, wt = ctx.repo.main_path, ctx.worktree
        cfg = ctx.config
        allocs: list[Allocation[FilesSpec]] = []
        for rel in dict.fromkeys([*cfg.env.shared, *cfg.files.symlink]):
            allocs.append(self._alloc("symlink", rel, main, wt, required=rel in cfg.env.shared))
        copies = list(cfg.files.copy)
        if cfg.files.worktreeinclude:
            copies += included_files(main)
        for rel in dict.fromkeys(copies):
            allocs.append(self._alloc("copy", rel, main, wt, required=rel in cfg.files.copy))
        return allocs

    def _alloc(self, op: str, rel: str, main: Path, wt: Path, *,
               required: bool) -> Allocation[FilesSpec]:
        _check_relative(rel)
        return Allocation(self.kind, f"{op}:{rel}", FilesSpec(
            op=op, rel=rel, src=str(main / rel), dst=str(wt / rel), required=required))

    def found(self, alloc: Allocation[FilesSpec]) -> bool:
        # Copies and links are the worktree's own files; nothing to adopt.
        return False

    def exists(self, alloc: Allocation[FilesSpec]) -> bool:
        spec = alloc.spec
        dst = Path(spec.dst)
        if spec.op == "symlink":
            return (dst.is_symlink() and os.readlink(dst) == spec.src) or \
                sharedenv.is_generated(dst)
        return dst.exists() or dst.is_symlink()

    def create(self, alloc: Allocation[FilesSpec], ctx: PlanContext) -> bool:
        spec = alloc.spec
        src, dst = Path(spec.src), Path(spec.dst)
        if not (src.exists() or src.is_symlink()):
            if spec.required:
                raise ProviderError(
                    f"{spec.rel} is missing in the main worktree ({src})",
                    hint=f"create it there, or remove {spec.rel!r} from branchyard.toml",
                )
            return False
        if self.exists(alloc):
            return False
        if dst.exists() or dst.is_symlink():
            # A file the worktree already has (tracked, or made by the user) is kept.
            ctx.reporter.message(f"kept the worktree's own {spec.rel}")
            return False
        dst.parent.mkdir(parents=True, exist_ok=True)
        if spec.op == "symlink":
            dst.symlink_to(src)
        elif src.is_dir() and not src.is_symlink():
            shutil.copytree(src, dst, symlinks=True)
        else:
            shutil.copy2(src, dst, follow_symlinks=False)
        return True

    def destroy(self, alloc: Allocation[FilesSpec]) -> None:
        # Copies belong to the worktree once made; only our own links are removed,
        # and generated env copies nobody edited.
        spec = alloc.spec
        dst = Path(spec.dst)
        if spec.op == "symlink" and (
                (dst.is_symlink() and os.readlink(dst) == spec.src)
                or sharedenv.is_pristine(dst)):
            dst.unlink()

    def env(self, alloc: Allocation[FilesSpec]) -> dict[str, str]:
        return {}

    def describe(self, alloc: Allocation[FilesSpec]) -> dict[str, Any]:
        return {"op": alloc.spec.op, "path": alloc.spec.rel}


def _check_relative(rel: str) -> None:
    path = Path(rel)
    if path.is_absolute() or ".." in path.parts or not rel.strip():
        raise ProviderError(f"{rel!r} must be a path relative to the worktree, inside it",
                            hint="fix the entry in branchyard.toml")


def included_files(main: Path) -> list[str]:
    """Gitignored files of the main worktree that ``.worktreeinclude`` lists."""
    include = main / WORKTREEINCLUDE
    if not include.is_file():
        return []
    listed = git.git(["ls-files", "-z", "--others", "--ignored",
                      f"--exclude-from={include}", "--directory"], main).stdout
    ignored = git.git(["ls-files", "-z", "--others", "--ignored", "--exclude-standard",
                       "--directory"], main).stdout
    ignored_set = {p.rstrip("/") for p in ignored.split("\0") if p}
    wanted: list[str] = []
    for item in listed.split("\0"):
        rel = item.rstrip("/")
        if rel and (rel in ignored_set or any(rel.startswith(i + "/") for i in ignored_set)):
            wanted.append(rel)
    return sorted(wanted)
