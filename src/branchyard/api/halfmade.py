"""What an interrupted `up` or `down` left of a worktree, whether any of it is a
person's work, and removing the rest.

`up` adds a worktree without a checkout and then checks it out (`git reset
--hard`), which writes the commit's files one at a time and the index last
(through ``index.lock``). Killed midway, it leaves no index, some of the
commit's files, and at most one cut short (the one being written). So a
worktree with no index whose every file is the commit's own, byte for byte
(one may be a prefix of it), holds nothing that the commit does not: it is an
unfinished checkout. Anything else (a file the commit does not have, other
content, a second short file, a HEAD that moved) is somebody's work and stays.

`down` removes the directory with `git worktree remove`; killed midway, a part
of the tree is gone. The user asked for its removal, so it is finished: with
``--force`` whatever is left; without, only if what is left is unchanged (git
shows nothing but the deletions the removal made), as `down` had checked.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from branchyard.context import Context
from branchyard.core.errors import UnsafeError
from branchyard.repo import git


def has_index(path: Path) -> bool:
    """Whether the worktree at ``path`` has an index (its checkout completed)."""
    done = git.git(["rev-parse", "--path-format=absolute", "--git-path", "index"], path,
                   check=False)
    return done.returncode == 0 and Path(done.stdout.strip()).is_file()


def head_of(path: Path) -> str | None:
    return git.rev_parse("HEAD", path) if (path / ".git").exists() else None


def checkout_leftovers(path: Path, commit: str, main: Path) -> list[str]:
    """What in ``path`` is not an unfinished checkout of ``commit`` (empty: all
    of it is; nothing there is anybody's work). For a worktree with no index."""
    head = head_of(path)
    if head is not None and head != commit:
        return [f"HEAD is at {head[:12]}, not {commit[:12]}"]
    try:
        on_disk = _files(path)
    except OSError as err:  # unreadable: nobody can say it is not somebody's
        return [f"{err.filename or path}: {err.strerror}"]
    committed = _tree(commit, main)
    strange = sorted(rel for rel in on_disk if rel not in committed)
    regular = [rel for rel in on_disk if rel in committed and not os.path.islink(path / rel)]
    hashes = _hash_files(main, path, regular)
    differ = [rel for rel in regular if hashes.get(rel) != committed[rel]]
    strange += [rel for rel in on_disk if rel in committed and os.path.islink(path / rel)
                and _link_oid(path / rel, main) != committed[rel]]
    if len(differ) == 1 and _is_prefix(path / differ[0], commit, differ[0], main):
        differ = []  # the file git was writing when it was killed
    return sorted(strange + differ)


def removal_leftovers(path: Path, commit: str | None, main: Path) -> list[str]:
    """What in a half-removed worktree is not the removal's own doing: a change
    git shows other than a deletion, or (when git cannot read the tree any more)
    a file not ignored that is not the commit's own."""
    if (path / ".git").is_file() and head_of(path) is not None:
        data = git.git(["status", "--porcelain=v1", "-z", "--untracked-files=all",
                        "--no-renames"], path).stdout
        return [item[3:] for item in data.split("\0")
                if len(item) > 3 and item[:2] not in (" D", "D ")]
    if commit is None:
        return [f"{path} (git no longer reads it and its commit is unknown)"]
    left = [rel for rel in checkout_leftovers(path, commit, main) if (path / rel).exists()]
    return sorted(set(left) - _ignored(left, main))


def finish_removal(ctx: Context, path: Path, *, branch: str, force: bool) -> None:
    """Remove what an interrupted `down` left of ``path``: all of it with
    ``force``, else only when nothing left there changed."""
    from branchyard.api.stopping import stop_worktree_processes

    main = ctx.repo.main_path

    if path.exists() and not force:
        commit = git.rev_parse(branch, main) if branch else None
        left = removal_leftovers(path, commit, main)
        if left:
            shown = ", ".join(left[:5]) + (f" and {len(left) - 5} more" if len(left) > 5
                                           else "")
            raise UnsafeError(
                f"{path} is half removed (an interrupted `down`), and what is left of it "
                f"has changes: {shown}",
                hint=f"keep what you need, then `branchyard down --force {branch or path}`")
    if path.exists():
        stop_worktree_processes(ctx, path)
    remove_tree(main, path)


def remove_tree(main: Path, path: Path) -> None:
    """Remove the worktree at ``path``, whatever git still knows of it (a lock
    a killed `worktree add` left, a `.git` file a killed removal took)."""
    git.git(["worktree", "remove", "--force", "--force", str(path)], main, check=False)
    if path.exists() or path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    git.git(["worktree", "unlock", str(path)], main, check=False)
    git.git(["worktree", "prune"], main, check=False)


def _files(root: Path) -> list[str]:
    """Every file and symlink under ``root`` (its own ``.git`` file aside), relative."""
    found: list[str] = []
    stack = [root]
    while stack:
        here = stack.pop()
        with os.scandir(here) as entries:
            for item in entries:
                rel = os.path.relpath(item.path, root)
                if rel == ".git" and item.is_file(follow_symlinks=False):
                    continue
                if item.is_dir(follow_symlinks=False):
                    stack.append(Path(item.path))
                else:
                    found.append(rel)
    return found


def _tree(commit: str, main: Path) -> dict[str, str]:
    """path → blob id of every file and symlink of ``commit``."""
    data = git.git(["ls-tree", "-r", "-z", "--full-tree", commit], main).stdout
    tree: dict[str, str] = {}
    for item in data.split("\0"):
        meta, _, rel = item.partition("\t")
        parts = meta.split()
        if len(parts) == 3 and parts[1] == "blob":
            tree[rel] = parts[2]
    return tree


def _hash_files(main: Path, root: Path, rels: list[str]) -> dict[str, str]:
    """Blob ids of files as `git add` would store them (the project's filters)."""
    if not rels:
        return {}
    # run inside the tree with git's own repository named, so that it works when
    # the tree's `.git` file is gone, and .gitattributes filters apply by path
    common = str(git.common_dir(main))
    done = git.git([f"--git-dir={common}", f"--work-tree={root}", "hash-object",
                    "--stdin-paths"], root, input_text="\n".join(rels) + "\n", check=False)
    lines = done.stdout.split()
    return dict(zip(rels, lines, strict=True)) if len(lines) == len(rels) else {}


def _link_oid(link: Path, main: Path) -> str:
    target = os.fsencode(os.readlink(link))
    algo = git.out(["rev-parse", "--show-object-format"], main)
    digest = hashlib.new("sha256" if algo == "sha256" else "sha1")
    digest.update(b"blob %d\0" % len(target) + target)
    return digest.hexdigest()


def _is_prefix(file: Path, commit: str, rel: str, main: Path) -> bool:
    """Whether ``file`` holds the start of what checking out ``rel`` writes."""
    if file.is_symlink() or not file.is_file():
        return False
    wanted = git.checked_out_bytes(commit, rel, main)
    have = file.read_bytes()
    return wanted is not None and len(have) < len(wanted) and wanted.startswith(have)


def _ignored(rels: list[str], main: Path) -> set[str]:
    if not rels:
        return set()
    done = git.git(["check-ignore", "--no-index", "--stdin", "-z"], main,
                   input_text="\0".join(rels) + "\0", check=False)
    return {r for r in done.stdout.split("\0") if r}
