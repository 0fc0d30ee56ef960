"""A copy-on-write home for the managed cluster on Linux (``server start --cow``):
a directory the user names on XFS (reflink=1) or btrfs, or — as root, with no
path — a sparse XFS image file branchyard makes (``mkfs.xfs -m reflink=1``) and
loop-mounts. On it, PostgreSQL 18's ``file_copy_method = clone`` makes every
clone a reflink: O(1) in time and disk.

The image and its mount point are recorded in ``server.json``; ``server stop
--remove`` unmounts and deletes them. After a reboot the image is no longer
mounted: starting the cluster remounts it (as root), and ``doctor`` reports it
(``--fix`` remounts it). A cluster is never started on the empty mount point
beneath an unmounted image.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from branchyard.core.errors import CommandError, DatabaseError
from branchyard.db import pgbin
from branchyard.system.external import run

GIB = 2**30
MIN_IMAGE_GIB = 1


@dataclass(frozen=True)
class CowHome:
    """Where a copy-on-write cluster lives."""

    cluster_dir: Path
    image: str = ""  # the XFS image branchyard made ("" = the user's directory)
    mount: str = ""  # where the image is mounted


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()[:12]


def in_directory(path: Path, home_key: str) -> CowHome:
    """The cluster in the user's reflink-capable directory ``path`` (refused when
    it cannot reflink)."""
    from branchyard.db import cloning

    path = path.expanduser()
    if not path.is_dir():
        raise DatabaseError(f"--cow {path}: no such directory",
                            hint="name an existing directory on XFS (reflink=1) or btrfs")
    if not cloning.reflinks(path):
        raise DatabaseError(
            f"--cow {path}: this filesystem cannot make reflinks "
            f"({filesystem_type(path) or 'unknown type'}), so clones would copy every byte",
            hint="name a directory on XFS made with reflink=1 or on btrfs; or, as root, "
                 "`branchyard server start --cow` with no path makes a loop-mounted XFS image")
    return CowHome(path / f"branchyard-server-{_digest(home_key)}")


def image_home(home_key: str) -> CowHome:
    """Where the loop-mounted image and its mount point go (nothing is made)."""
    stem = pgbin.SHARED_ROOT / f"cow-{_digest(home_key)}"
    mount = Path(f"{stem}.mnt")
    return CowHome(mount / "cluster", image=f"{stem}.img", mount=str(mount))


def check_can_mount() -> None:
    """Raise a clear error where branchyard cannot make and mount an image."""
    why = ("" if sys.platform.startswith("linux") else "loop-mounted images are Linux-only")
    if not why and os.geteuid() != 0:
        why = "mounting an image needs root"
    if not why and not shutil.which("mkfs.xfs"):
        why = "mkfs.xfs is not installed (apt install xfsprogs, dnf install xfsprogs)"
    if not why and not Path("/dev/loop-control").exists():
        why = "this machine has no loop devices (/dev/loop-control; a container without them?)"
    if why:
        raise DatabaseError(
            f"cannot make a copy-on-write disk for the managed server: {why}",
            hint="name a directory on XFS (reflink=1) or btrfs: `branchyard server start "
                 "--cow PATH` (or [server] cow_path); on macOS, APFS clones already")


def make_image(home: CowHome, size_gib: int) -> None:
    """Create the sparse image, format it XFS with reflinks, and mount it."""
    check_can_mount()
    image, mount = Path(home.image), Path(home.mount)
    image.parent.mkdir(parents=True, exist_ok=True)
    image.parent.chmod(0o755)
    if image.exists():
        raise DatabaseError(f"{image} already exists: branchyard does not overwrite it",
                            hint="if it is a leftover, unmount and delete it yourself")
    with image.open("wb") as fh:
        fh.truncate(max(size_gib, MIN_IMAGE_GIB) * GIB)  # sparse: costs what is written
    image.chmod(0o600)
    try:
        run(["mkfs.xfs", "-q", "-m", "reflink=1", str(image)], timeout=120)
        mount.mkdir(exist_ok=True)
        _mount(home)
    except BaseException:
        if is_mounted(home):
            _umount(home)
        image.unlink(missing_ok=True)
        raise


def is_mounted(home: CowHome) -> bool:
    return bool(home.mount) and os.path.ismount(home.mount)


def ensure_mounted(home: CowHome) -> bool:
    """Mount a recorded image that is not mounted (after a reboot); True when it
    mounted it. Raises when it cannot — never lets a cluster start on the bare
    mount point."""
    if not home.image or is_mounted(home):
        return False
    if not Path(home.image).is_file():
        raise DatabaseError(
            f"the managed server's disk image {home.image} is gone",
            hint="restore it, or `branchyard server stop --remove --force` to forget the "
                 "cluster it held")
    if os.geteuid() != 0:
        raise DatabaseError(f"the managed server's disk image {home.image} is not mounted "
                            f"on {home.mount}", hint="run `branchyard doctor --fix` as root")
    Path(home.mount).mkdir(parents=True, exist_ok=True)
    _mount(home)
    return True


def _mount(home: CowHome) -> None:
    try:
        run(["mount", "-o", "loop", home.image, home.mount], timeout=60)
    except CommandError as exc:
        raise DatabaseError(f"mounting {home.image} on {home.mount} failed: {exc.message}",
                            hint="check `losetup -f` finds a free loop device, and dmesg") \
            from None
    Path(home.mount).chmod(0o755)  # the server's unprivileged user reaches its cluster


def _umount(home: CowHome) -> None:
    try:
        run(["umount", home.mount], timeout=60)
    except CommandError as exc:
        raise DatabaseError(f"unmounting {home.mount} failed: {exc.message}",
                            hint="stop what uses it (`fuser -m` names it), then retry") \
            from None


def remove_image(home: CowHome) -> None:
    """Unmount and delete the image and its mount point (``server stop --remove``)."""
    if not home.image:
        return
    if is_mounted(home):
        _umount(home)
    Path(home.image).unlink(missing_ok=True)
    mount = Path(home.mount)
    if mount.is_dir() and not os.path.ismount(mount):
        shutil.rmtree(mount, ignore_errors=True)


def filesystem_type(path: Path) -> str:
    """The type of the filesystem holding ``path`` from /proc/self/mounts ("" unknown)."""
    try:
        lines = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return ""
    real, best, kind = os.path.realpath(path), "", ""
    for line in lines:
        parts = line.split()
        if len(parts) >= 3:
            point = parts[1].replace("\\040", " ")
            if (real == point or real.startswith(point.rstrip("/") + "/")) and \
                    len(point) > len(best):
                best, kind = point, parts[2]
    return kind
