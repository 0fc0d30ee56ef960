"""What one side of a merge changed: file-level diffs between commits, and
blob contents read in one batch."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from branchyard.repo import git

ZERO = "0" * 40


@dataclass(frozen=True)
class Change:
    """One path changed between two commits (renames are split into D + A)."""

    status: str  # A, M, D, T
    path: str
    blob: str  # the new blob id ("" when deleted)


def changes_between(old: str, new: str, cwd: Path) -> tuple[Change, ...]:
    """Every path that differs between commits ``old`` and ``new``."""
    data = git.git(["diff-tree", "-r", "-z", "--no-renames", "--raw", old, new], cwd).stdout
    return parse_raw(data)


def parse_raw(data: str) -> tuple[Change, ...]:
    """Parse ``git diff-tree -r -z --raw`` output."""
    items = data.split("\0")
    found: list[Change] = []
    for meta, path in zip(items[0::2], items[1::2], strict=False):
        fields = meta.lstrip(":").split(" ")
        if len(fields) < 5:
            continue
        blob = "" if fields[3] == ZERO else fields[3]
        found.append(Change(fields[4][:1], path, blob))
    return tuple(found)


def merge_base(a: str, b: str, cwd: Path) -> str | None:
    """The best common ancestor of two commits, or None for unrelated histories."""
    done = git.git(["merge-base", a, b], cwd, check=False)
    return done.stdout.strip() or None if done.returncode == 0 else None


def read_blobs(blobs: Sequence[str], cwd: Path) -> dict[str, str]:
    """The text of each blob (undecodable bytes replaced), in one git call."""
    wanted = sorted(set(blobs))
    if not wanted:
        return {}
    try:
        raw = git.git(["cat-file", "--batch"], cwd, input_text="\n".join(wanted) + "\n").stdout
    except UnicodeDecodeError:
        return {sha: text for sha in wanted if (text := _read_one(sha, cwd)) is not None}
    return _parse_batch(raw)


def _read_one(sha: str, cwd: Path) -> str | None:
    try:
        return git.out(["cat-file", "blob", sha], cwd)
    except UnicodeDecodeError:
        return None  # not text: no migration we can read


def _parse_batch(raw: str) -> dict[str, str]:
    texts: dict[str, str] = {}
    data = raw.encode("utf-8")  # git sizes are bytes
    pos = 0
    while pos < len(data):
        header_end = data.index(b"\n", pos)
        sha, kind, size = ([*data[pos:header_end].decode().split(" "), "", ""])[:3]
        if kind == "missing" or not size:
            pos = header_end + 1
            continue
        start = header_end + 1
        end = start + int(size)
        texts[sha] = data[start:end].decode("utf-8", "replace")
        pos = end + 1
    return texts


def commits_between(old: str, new: str, cwd: Path) -> tuple[str, ...]:
    """The commits reachable from ``new`` but not from ``old``."""
    return tuple(git.out(["rev-list", f"{old}..{new}"], cwd).split())
