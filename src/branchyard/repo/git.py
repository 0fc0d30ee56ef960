"""Every git call branchyard makes, and the parsing of git's -z output."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from branchyard.core.errors import CommandError, GitError, NotARepoError
from branchyard.system import external

MIN_GIT = (2, 38)
TRANSIENT_RETRIES = 10


@dataclass(frozen=True)
class WorktreeEntry:
    """One entry of ``git worktree list --porcelain -z``."""

    path: Path
    head: str  # commit sha, "" for a bare entry
    branch: str | None  # short name, None when detached or bare
    bare: bool = False
    detached: bool = False
    locked: bool = False
    prunable: bool = False


def clean_env() -> Mapping[str, str]:
    """The environment with every ``GIT_*`` variable removed, so that a hook
    environment (GIT_DIR, GIT_INDEX_FILE, …) never redirects our git calls."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    # Keep the sealing variables tests and users set on purpose.
    for keep in ("GIT_CONFIG_NOSYSTEM", "GIT_CONFIG_GLOBAL", "GIT_AUTHOR_NAME",
                 "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL",
                 "GIT_AUTHOR_DATE", "GIT_COMMITTER_DATE"):
        if keep in os.environ:
            env[keep] = os.environ[keep]
    env["LC_ALL"] = "C"
    return env


def git(
    args: Sequence[str],
    cwd: Path | str,
    *,
    check: bool = True,
    env: Mapping[str, str] | None = None,
    input_text: str | None = None,
    timeout: float = external.DEFAULT_TIMEOUT,
) -> external.Completed:
    """Run ``git ARGS`` in ``cwd``; raise :class:`GitError` on failure."""
    full_env = dict(clean_env())
    if env:
        full_env.update(env)
    try:
        return external.run(["git", *args], cwd=cwd, env=full_env, check=check,
                        input_text=input_text, timeout=timeout)
    except CommandError as exc:
        raise GitError(str(exc), exc.hint) from exc


def out(args: Sequence[str], cwd: Path | str, **kw: object) -> str:
    """Stdout of a git command, trailing newline removed."""
    return git(args, cwd, **kw).stdout.rstrip("\n")  # type: ignore[arg-type]


def version() -> tuple[int, int]:
    text = external.run(["git", "--version"]).stdout
    match = re.search(r"(\d+)\.(\d+)", text)
    if not match:
        raise GitError(f"cannot read the git version from {text!r}")
    return int(match.group(1)), int(match.group(2))


def require_version() -> None:
    have = version()
    if have < MIN_GIT:
        raise GitError(
            f"git {have[0]}.{have[1]} is too old: branchyard needs git "
            f"{MIN_GIT[0]}.{MIN_GIT[1]} or newer (for `git merge-tree --write-tree`)",
            hint="install a newer git and run the command again",
        )


def parse_worktrees(data: str) -> list[WorktreeEntry]:
    """Parse ``git worktree list --porcelain -z``."""
    entries: list[WorktreeEntry] = []
    fields: dict[str, str] = {}
    for item in data.split("\0"):
        if item:
            key, _, value = item.partition(" ")
            fields[key] = value
            continue
        if fields:
            entries.append(_entry(fields))
            fields = {}
    if fields:
        entries.append(_entry(fields))
    return entries


def _entry(fields: Mapping[str, str]) -> WorktreeEntry:
    branch = fields.get("branch")
    if branch is not None and branch.startswith("refs/heads/"):
        branch = branch[len("refs/heads/"):]
    return WorktreeEntry(
        path=Path(fields["worktree"]),
        head=fields.get("HEAD", ""),
        branch=branch,
        bare="bare" in fields,
        detached="detached" in fields,
        locked="locked" in fields,
        prunable="prunable" in fields,
    )


@dataclass(frozen=True)
class WorktreeAdmin:
    """git's own record of a linked worktree, ``<git-common-dir>/worktrees/<id>/``.

    The id stays the same when the worktree moves (``git worktree move``, or ``mv``
    followed by ``git worktree repair``); only the path in its ``gitdir`` file changes.
    Paths are strings: this is read on every ledger read, and pathlib costs more
    than the reading.
    """

    id: str
    admin_dir: str
    path: str  # where git says the worktree is now (normalised)


def worktree_admins(common_dir: Path) -> list[WorktreeAdmin]:
    """Every linked worktree git records, read from its files (no subprocess)."""
    root = os.path.join(common_dir, "worktrees")
    try:
        ids = sorted(os.listdir(root))
    except OSError:
        return []
    found = []
    for wid in ids:
        admin = os.path.join(root, wid)
        gitdir = _read_small(os.path.join(admin, "gitdir"))
        if gitdir:  # relative with worktree.useRelativePaths: from the admin directory
            found.append(WorktreeAdmin(
                wid, admin, os.path.dirname(os.path.normpath(os.path.join(admin, gitdir)))))
        # else: not a worktree's metadata, or half-written by `git worktree add`
    return found


def admin_branch(admin: WorktreeAdmin) -> str | None:
    """The branch checked out in a linked worktree (None: detached, or unreadable)."""
    head = _read_small(os.path.join(admin.admin_dir, "HEAD"))
    ref = head.removeprefix("ref:").strip() if head.startswith("ref:") else ""
    return ref[len("refs/heads/"):] if ref.startswith("refs/heads/") else None


def _read_small(path: str) -> str:
    """A small metadata file's text, stripped; "" when unreadable."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return ""
    try:
        return os.read(fd, 65536).decode("utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return ""
    finally:
        os.close(fd)


def worktrees(cwd: Path | str) -> list[WorktreeEntry]:
    args = ["worktree", "list", "--porcelain", "-z"]
    for _ in range(TRANSIENT_RETRIES):
        done = git(args, cwd, check=False)
        if done.returncode == 0:
            return parse_worktrees(done.stdout)
        if "failed to read" not in done.stderr:
            break
        # another process is half-way through `git worktree add`: its metadata
        # files exist but are still empty for a moment
        time.sleep(0.02)
    return parse_worktrees(git(args, cwd).stdout)


def is_valid_branch_name(name: str, cwd: Path | str) -> bool:
    if not name or name.startswith("-"):
        return False
    return git(["check-ref-format", "--branch", name], cwd, check=False).returncode == 0


def rev_parse(ref: str, cwd: Path | str) -> str | None:
    done = git(["rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}"],
               cwd, check=False)
    return done.stdout.strip() or None if done.returncode == 0 else None


def branch_exists(name: str, cwd: Path | str) -> bool:
    done = git(["show-ref", "--verify", "--quiet", f"refs/heads/{name}"], cwd, check=False)
    return done.returncode == 0


def is_ancestor(ancestor: str, descendant: str, cwd: Path | str) -> bool:
    done = git(["merge-base", "--is-ancestor", ancestor, descendant], cwd, check=False)
    return done.returncode == 0


def checked_out_bytes(commit: str, path: str, cwd: Path | str) -> bytes | None:
    """The bytes checking out ``path`` of ``commit`` writes (filters applied)."""
    import subprocess

    try:
        done = subprocess.run(["git", "cat-file", "--filters", f"{commit}:{path}"], cwd=cwd,
                              env=dict(clean_env()), capture_output=True, check=False,
                              timeout=external.DEFAULT_TIMEOUT)
    except subprocess.TimeoutExpired:
        return None
    return done.stdout if done.returncode == 0 else None


def status_porcelain(worktree: Path | str) -> list[str]:
    """Paths with uncommitted or untracked (non-ignored) changes; a rename or copy
    as ``old -> new``."""
    data = git(["status", "--porcelain=v1", "-z", "--untracked-files=normal"], worktree).stdout
    return parse_status(data)


def parse_status(data: str) -> list[str]:
    """Parse ``git status --porcelain=v1 -z``: each entry is ``XY PATH``; a rename
    or copy (R or C in X or Y) is followed by its source path, with no XY of its own."""
    items = iter(data.split("\0"))
    changed: list[str] = []
    for item in items:
        if len(item) < 4:
            continue
        path = item[3:]
        if "R" in item[:2] or "C" in item[:2]:
            path = f"{next(items, '')} -> {path}"
        changed.append(path)
    return changed


def is_dirty(worktree: Path | str) -> bool:
    return bool(status_porcelain(worktree))


def current_branch(worktree: Path | str) -> str | None:
    done = git(["symbolic-ref", "--quiet", "--short", "HEAD"], worktree, check=False)
    return done.stdout.strip() or None if done.returncode == 0 else None


def base_branch(recorded: str, configured: str, main: Path | str) -> str:
    """The branch a worktree is made from and merges into — the one rule of `up`,
    `down`, `merge`, the radar and the queue: the base recorded for it, else
    ``[project] base``, else the repository's main branch (:func:`default_branch`)."""
    return recorded or configured or default_branch(main)


def default_branch(main: Path | str) -> str:
    """The repository's main branch: origin's HEAD, else what the main worktree
    (or a bare repository's HEAD) has checked out, else main/master/trunk/develop,
    else ``HEAD``."""
    done = git(["symbolic-ref", "--quiet", "--short", "refs/remotes/origin/HEAD"],
               main, check=False)
    if done.returncode == 0 and done.stdout.strip():
        remote = done.stdout.strip()
        local = remote.partition("/")[2]
        return local if branch_exists(local, main) else remote
    current = current_branch(main)
    if current and branch_exists(current, main):
        return current
    for name in ("main", "master", "trunk", "develop"):
        if branch_exists(name, main):
            return name
    return "HEAD"


def has_commits(cwd: Path | str) -> bool:
    return git(["rev-parse", "--verify", "--quiet", "HEAD"], cwd, check=False).returncode == 0


def common_dir(cwd: Path | str) -> Path:
    done = git(["rev-parse", "--path-format=absolute", "--git-common-dir"], cwd, check=False)
    if done.returncode != 0:
        raise NotARepoError(
            f"{cwd} is not inside a git repository",
            hint="run branchyard inside a git repository or one of its worktrees",
        )
    return Path(done.stdout.strip())
