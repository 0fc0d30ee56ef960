"""What a filesystem can do for a tree copy: reflinks (copy-on-write clones),
hardlinks, or only plain copies. Probed once per pair of filesystems."""

from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path

# linux/fs.h: _IOW(0x94, 9, int). The same request works on btrfs, XFS (reflink=1),
# bcachefs and overlayfs on top of those; ext4 answers EOPNOTSUPP.
FICLONE = 0x40049409


@dataclass(frozen=True)
class Capabilities:
    """What copying from one filesystem into another may use."""

    reflink: bool
    hardlink: bool


def reflink_fd(src_fd: int, dst_fd: int) -> None:
    """Make ``dst_fd`` a copy-on-write clone of ``src_fd`` (raises OSError)."""
    if not sys.platform.startswith("linux"):
        raise OSError(95, "reflinks are only probed on Linux")
    import fcntl

    fcntl.ioctl(dst_fd, FICLONE, src_fd)


class FsProbe:
    """Remembers, per (source device, destination device), what works.

    One instance lives as long as the provider that owns it, so a setup with
    several dependency trees probes each filesystem pair once.
    """

    def __init__(self) -> None:
        self._known: dict[tuple[int, int], Capabilities] = {}

    def capabilities(self, source: Path, dest_dir: Path) -> Capabilities:
        """What copying files from ``source`` into ``dest_dir`` (an existing
        directory) may use."""
        key = (os.stat(source).st_dev, os.stat(dest_dir).st_dev)
        if key not in self._known:
            same_fs = key[0] == key[1]
            self._known[key] = _probe(dest_dir) if same_fs else Capabilities(False, False)
        return self._known[key]


def _probe(directory: Path) -> Capabilities:
    base = directory / f".branchyard-fsprobe-{os.getpid()}"
    made = [base, base.with_name(base.name + ".clone"), base.with_name(base.name + ".link")]
    try:
        base.write_bytes(b"probe\n")
        return Capabilities(reflink=_try_reflink(made[0], made[1]),
                            hardlink=_try_link(made[0], made[2]))
    finally:
        for path in made:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


def _try_reflink(src: Path, dst: Path) -> bool:
    src_fd = os.open(src, os.O_RDONLY)
    try:
        dst_fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            reflink_fd(src_fd, dst_fd)
        except OSError:
            return False
        finally:
            os.close(dst_fd)
    finally:
        os.close(src_fd)
    return True


def _try_link(src: Path, dst: Path) -> bool:
    try:
        os.link(src, dst)
    except OSError:
        return False
    return True
