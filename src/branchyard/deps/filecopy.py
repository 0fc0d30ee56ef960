"""Making one entry of a tree copy (:mod:`branchyard.deps.treecopy`): a file
hardlinked, reflinked or copied with its mode and times, or a symlink recreated
with its target moved when it pointed into the old tree."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Literal

from branchyard.core.paths import is_inside
from branchyard.system.fsprobe import reflink_fd

# reflink: copy-on-write clone of every file; hardlink: link every file;
# shared: link only files already hardlinked elsewhere (a content-addressed
# store such as pnpm's), copy the rest; copy: copy every file.
Method = Literal["reflink", "hardlink", "shared", "copy"]
METHODS: tuple[Method, ...] = ("reflink", "hardlink", "shared", "copy")


def make_symlink(src: str, dst: str, rewrite_from: Path | None,
                 rewrite_to: Path | None) -> str:
    """Recreate the symlink ``src`` at ``dst`` (its target moved by :func:`_rewrite`)."""
    target = os.readlink(src)
    os.symlink(_rewrite(target, rewrite_from, rewrite_to), dst)
    return "symlink"


def _rewrite(target: str, old: Path | None, new: Path | None) -> str:
    """Absolute targets inside ``old`` move under ``new``; everything else
    (relative targets above all) stays exactly as it was."""
    if old is None or new is None or not os.path.isabs(target):
        return target
    old_s = str(old)
    if is_inside(target, old_s):
        return str(new) + target[len(old_s.rstrip(os.sep)):]
    return target


def make_file(method: Method, src: str, dst: str) -> str:
    """Make ``dst`` from ``src`` by ``method``; how it was made: link, clone or copy."""
    if method == "hardlink":
        os.link(src, dst)
        return "link"
    if method == "shared" and os.lstat(src).st_nlink > 1:
        os.link(src, dst)
        return "link"
    return _clone_or_copy(src, dst, clone=method == "reflink")


def _clone_or_copy(src: str, dst: str, *, clone: bool) -> str:
    src_fd = os.open(src, os.O_RDONLY | os.O_CLOEXEC)
    try:
        info = os.fstat(src_fd)
        dst_fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            if clone:
                reflink_fd(src_fd, dst_fd)
            else:
                _pump(src_fd, dst_fd, info.st_size)
            os.fchmod(dst_fd, stat.S_IMODE(info.st_mode))
            os.utime(dst_fd, ns=(info.st_atime_ns, info.st_mtime_ns))
        finally:
            os.close(dst_fd)
    finally:
        os.close(src_fd)
    return "clone" if clone else "copy"


def _pump(src_fd: int, dst_fd: int, size: int) -> None:
    """Copy ``size`` bytes in the kernel when it can, else through a buffer."""
    kernel_copy = getattr(os, "copy_file_range", None)  # Linux only: macOS lacks it
    left = size if kernel_copy is not None else -1
    try:
        while left > 0 and kernel_copy is not None:
            sent = kernel_copy(src_fd, dst_fd, left)
            if sent == 0:
                break
            left -= sent
    except OSError:
        left = -1  # fall back: start over with read/write
    if left < 0:
        os.lseek(src_fd, 0, os.SEEK_SET)
        os.lseek(dst_fd, 0, os.SEEK_SET)
        os.ftruncate(dst_fd, 0)
        while chunk := os.read(src_fd, 1 << 20):
            os.write(dst_fd, chunk)
