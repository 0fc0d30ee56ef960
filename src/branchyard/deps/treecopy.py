"""Fast copies of large trees of small files (node_modules and friends).

The tree is walked once with ``os.scandir``, every directory is created up front,
then files and symlinks are made by a thread pool in batches (``os.link``,
``ioctl(FICLONE)`` and ``copy_file_range`` release the GIL, so threads overlap
the syscalls). File modes and timestamps are kept; symlinks are recreated as
they are, except absolute ones pointing into ``rewrite_from``, which are moved
to ``rewrite_to`` (one entry at a time: :mod:`branchyard.deps.filecopy`).
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from branchyard.core.errors import ProviderError
from branchyard.deps.filecopy import Method, make_file, make_symlink

ProgressFn = Callable[[int, int], None]
INLINE_BATCH = 2048  # files between two progress reports without threads


class TreeCopyError(ProviderError):
    code = "deps"


@dataclass(frozen=True)
class DirEntry:
    path: str
    mode: int  # permission bits
    atime_ns: int
    mtime_ns: int


@dataclass(frozen=True)
class TreeListing:
    """A pre-walked tree: paths relative to its root, parents before children."""

    dirs: tuple[DirEntry, ...]
    files: tuple[str, ...]
    links: tuple[str, ...]
    skipped: tuple[str, ...]  # sockets, fifos, devices: never copied


@dataclass(frozen=True)
class CopyRequest:
    source: Path
    dest: Path  # must not exist yet
    method: Method
    rewrite_from: Path | None = None  # absolute symlinks under this prefix…
    rewrite_to: Path | None = None  # …are pointed under this one instead
    workers: int = 0  # 0: a default for this machine


@dataclass(frozen=True)
class CopyStats:
    dirs: int
    files: int
    links: int
    linked: int  # files hardlinked
    cloned: int  # files reflinked
    copied: int  # files copied byte for byte
    skipped: int
    seconds: float


def list_tree(root: Path) -> TreeListing:
    """Walk ``root`` without following symlinks."""
    dirs: list[DirEntry] = []
    files: list[str] = []
    links: list[str] = []
    skipped: list[str] = []
    pending = [""]
    while pending:
        rel = pending.pop()
        with os.scandir(os.path.join(root, rel)) as entries:
            for entry in entries:
                path = os.path.join(rel, entry.name)
                if entry.is_symlink():
                    links.append(path)
                elif entry.is_dir(follow_symlinks=False):
                    info = entry.stat(follow_symlinks=False)
                    dirs.append(DirEntry(path, stat.S_IMODE(info.st_mode), info.st_atime_ns,
                                         info.st_mtime_ns))
                    pending.append(path)
                elif entry.is_file(follow_symlinks=False):
                    files.append(path)
                else:
                    skipped.append(path)
    return TreeListing(tuple(dirs), tuple(files), tuple(links), tuple(skipped))


def copy_tree(request: CopyRequest, on_progress: ProgressFn | None = None) -> CopyStats:
    """Recreate ``request.source`` at ``request.dest`` with ``request.method``.

    Raises :class:`TreeCopyError` (leaving the partial destination for the
    caller to remove) when a file cannot be made.
    """
    start = time.perf_counter()
    try:
        listing = list_tree(request.source)
        _make_dirs(request, listing)
        counts = _make_entries(request, listing, on_progress or _ignore)
        _set_dir_modes(request, listing)
    except OSError as exc:
        raise TreeCopyError(
            f"could not {request.method} {request.source} to {request.dest}: "
            f"{exc.strerror or exc}" + (f" ({exc.filename})" if exc.filename else ""),
            hint="check free space and permissions of the worktree, then run setup "
                 "again") from exc
    return CopyStats(dirs=len(listing.dirs), files=len(listing.files),
                     links=len(listing.links), linked=counts["link"],
                     cloned=counts["clone"], copied=counts["copy"],
                     skipped=len(listing.skipped), seconds=time.perf_counter() - start)


def default_workers() -> int:
    """Per file, Python holds the GIL about as long as the kernel spends in the
    syscall, so many threads only contend; two overlap a syscall blocked on the
    disk with the next one (bench/deps.py times a few counts on this machine)."""
    return min(8, max(2, (os.cpu_count() or 2) // 2))


def _ignore(done: int, total: int) -> None:
    pass


def _make_dirs(request: CopyRequest, listing: TreeListing) -> None:
    # Created writable; the real modes are applied once the files are in.
    os.mkdir(request.dest, 0o700)
    dest = str(request.dest)
    for entry in listing.dirs:
        os.mkdir(os.path.join(dest, entry.path), 0o700)


def _set_dir_modes(request: CopyRequest, listing: TreeListing) -> None:
    """Modes and times last, children first: creating entries bumps a directory's
    mtime, and npm trusts node_modules/.package-lock.json only while no package
    directory is newer than it."""
    dest = str(request.dest)
    for entry in reversed(listing.dirs):
        path = os.path.join(dest, entry.path)
        os.chmod(path, entry.mode)
        os.utime(path, ns=(entry.atime_ns, entry.mtime_ns))
    info = os.stat(request.source)
    os.chmod(dest, stat.S_IMODE(info.st_mode))
    os.utime(dest, ns=(info.st_atime_ns, info.st_mtime_ns))


def _make_entries(request: CopyRequest, listing: TreeListing,
                  on_progress: ProgressFn) -> dict[str, int]:
    work: list[tuple[bool, str]] = [(False, f) for f in listing.files]
    work += [(True, link) for link in listing.links]
    counts = {"link": 0, "clone": 0, "copy": 0, "symlink": 0}
    on_progress(0, len(work))
    workers = request.workers or default_workers()
    if workers == 1:
        _run_inline(request, work, counts, on_progress)
    else:
        _run_pool(request, work, counts, on_progress, workers)
    return counts


def _run_inline(request: CopyRequest, work: list[tuple[bool, str]], counts: dict[str, int],
                on_progress: ProgressFn) -> None:
    total = len(work)
    for start in range(0, total, INLINE_BATCH):
        _, kinds = _run_batch(request, work[start:start + INLINE_BATCH])
        _add(counts, kinds)
        on_progress(min(total, start + INLINE_BATCH), total)


def _run_pool(request: CopyRequest, work: list[tuple[bool, str]], counts: dict[str, int],
              on_progress: ProgressFn, workers: int) -> None:
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="branchyard-copy")
    try:
        futures = [pool.submit(_run_batch, request, batch)
                   for batch in _batches(work, _batch_size(len(work), workers))]
        _collect(futures, counts, len(work), on_progress)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _add(counts: dict[str, int], kinds: dict[str, int]) -> None:
    for kind, n in kinds.items():
        counts[kind] += n


def _collect(futures: Sequence[Future[tuple[int, dict[str, int]]]], counts: dict[str, int],
             total: int, on_progress: ProgressFn) -> None:
    done = 0
    remaining = set(futures)
    while remaining:
        finished, remaining = wait(remaining, return_when=FIRST_COMPLETED)
        for future in finished:
            size, kinds = future.result()  # re-raises the first failure
            done += size
            _add(counts, kinds)
        on_progress(done, total)


def _batch_size(total: int, workers: int) -> int:
    return max(64, min(1024, total // (workers * 8) or 1))


def _batches(work: list[tuple[bool, str]], size: int) -> Iterator[list[tuple[bool, str]]]:
    for i in range(0, len(work), size):
        yield work[i:i + size]


def _run_batch(request: CopyRequest, batch: list[tuple[bool, str]]) -> tuple[int, dict[str, int]]:
    kinds = {"link": 0, "clone": 0, "copy": 0, "symlink": 0}
    src_root, dst_root = str(request.source), str(request.dest)
    for is_link, rel in batch:
        src, dst = os.path.join(src_root, rel), os.path.join(dst_root, rel)
        try:
            kind = (make_symlink(src, dst, request.rewrite_from, request.rewrite_to) if is_link
                    else make_file(request.method, src, dst))
        except OSError as exc:
            raise TreeCopyError(
                f"could not {request.method} {src} to {dst}: {exc.strerror or exc}",
                hint="check free space and permissions of the worktree, then run "
                     "setup again") from exc
        kinds[kind] += 1
    return len(batch), kinds
