from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest
from nodetree import GeneratedTree, generate_node_modules

from branchyard.deps.treecopy import CopyRequest, TreeCopyError, copy_tree, list_tree
from branchyard.system.fsprobe import FsProbe


def _snapshot(root: Path, every: int = 1) -> dict[str, tuple[str, int, str]]:
    """Every entry: kind, permission bits, link target, and the content of
    every ``every``-th file."""
    out: dict[str, tuple[str, int, str]] = {}
    count = 0
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, root)
            info = os.lstat(path)
            if stat.S_ISLNK(info.st_mode):
                out[rel] = ("link", 0, os.readlink(path))
            elif stat.S_ISDIR(info.st_mode):
                out[rel] = ("dir", stat.S_IMODE(info.st_mode), "")
            else:
                count += 1
                content = Path(path).read_bytes() if count % every == 0 else b""
                out[rel] = ("file", stat.S_IMODE(info.st_mode), str(hash(content)))
    return out


@pytest.mark.parametrize("method", ["hardlink", "copy"])
def test_a_20000_file_tree_survives_whole_and_its_bins_run(
        big_tree: GeneratedTree, tmp_path: Path, method: str) -> None:
    dest = tmp_path / "node_modules"
    stats = copy_tree(CopyRequest(big_tree.root, dest, method))  # type: ignore[arg-type]

    assert stats.files == big_tree.files == 20_000
    assert _snapshot(dest, every=97) == _snapshot(big_tree.root, every=97)
    link = dest / ".bin" / big_tree.bins[0]
    assert not os.path.isabs(os.readlink(link))  # relative symlinks stay relative
    ran = subprocess.run([str(link)], capture_output=True, text=True, timeout=30, check=True)
    assert ran.stdout.strip().endswith(" ok")


def test_hardlinks_share_inodes_and_copies_do_not(tmp_path: Path) -> None:
    source = generate_node_modules(tmp_path / "src", files=200).root
    copy_tree(CopyRequest(source, tmp_path / "linked", "hardlink"))
    copy_tree(CopyRequest(source, tmp_path / "copied", "copy"))
    pkg = "pkg1/package.json"

    assert os.stat(tmp_path / "linked" / pkg).st_ino == os.stat(source / pkg).st_ino
    assert os.stat(tmp_path / "copied" / pkg).st_ino != os.stat(source / pkg).st_ino
    assert os.stat(tmp_path / "copied" / pkg).st_mtime_ns == os.stat(source / pkg).st_mtime_ns


def test_editing_a_copy_leaves_the_source_alone_but_a_hardlink_does_not(
        tmp_path: Path) -> None:
    """The documented rule: only hardlink trees nothing edits in place."""
    source = generate_node_modules(tmp_path / "src", files=200).root
    copy_tree(CopyRequest(source, tmp_path / "copied", "copy"))
    copy_tree(CopyRequest(source, tmp_path / "linked", "hardlink"))
    original = (source / "pkg1" / "package.json").read_text()

    (tmp_path / "copied" / "pkg1" / "package.json").write_text("edited in the copy")
    assert (source / "pkg1" / "package.json").read_text() == original
    (tmp_path / "linked" / "pkg1" / "package.json").write_text("edited in place")
    assert (source / "pkg1" / "package.json").read_text() == "edited in place"


def test_shared_links_only_files_already_in_a_store(tmp_path: Path) -> None:
    store, source = tmp_path / "store", tmp_path / "src"
    store.mkdir()
    (source / "pkg").mkdir(parents=True)
    (store / "blob").write_text("content-addressed\n")
    os.link(store / "blob", source / "pkg" / "index.js")
    (source / ".modules.yaml").write_text("written by the manager\n")

    stats = copy_tree(CopyRequest(source, tmp_path / "dest", "shared"))

    assert (stats.linked, stats.copied) == (1, 1)
    assert os.stat(tmp_path / "dest" / "pkg" / "index.js").st_ino == os.stat(store / "blob").st_ino
    assert os.stat(tmp_path / "dest" / ".modules.yaml").st_nlink == 1


def test_absolute_symlinks_into_the_main_worktree_move_to_the_worktree(tmp_path: Path) -> None:
    main, worktree = tmp_path / "main", tmp_path / "wt"
    (main / "node_modules").mkdir(parents=True)
    worktree.mkdir()
    (main / "node_modules" / "inside").symlink_to(main / "packages" / "lib")
    (main / "node_modules" / "outside").symlink_to("/usr/bin/env")
    (main / "node_modules" / "relative").symlink_to("../packages/lib")

    copy_tree(CopyRequest(main / "node_modules", worktree / "node_modules", "copy",
                          rewrite_from=main, rewrite_to=worktree))

    links = {p.name: os.readlink(p) for p in (worktree / "node_modules").iterdir()}
    assert links == {"inside": str(worktree / "packages" / "lib"), "outside": "/usr/bin/env",
                     "relative": "../packages/lib"}


def test_directory_modes_and_times_are_kept_even_read_only_ones(tmp_path: Path) -> None:
    source = tmp_path / "src"
    (source / "ro").mkdir(parents=True)
    (source / "ro" / "file").write_text("x")
    os.utime(source / "ro", ns=(1_000_000_000, 2_000_000_000))
    (source / "ro").chmod(0o555)
    try:
        copy_tree(CopyRequest(source, tmp_path / "dest", "copy"))
        copied = os.stat(tmp_path / "dest" / "ro")
        assert stat.S_IMODE(copied.st_mode) == 0o555
        assert copied.st_mtime_ns == 2_000_000_000  # npm compares these to its lockfile
        assert (tmp_path / "dest" / "ro" / "file").read_text() == "x"
    finally:
        (source / "ro").chmod(0o755)
        if (tmp_path / "dest" / "ro").exists():
            (tmp_path / "dest" / "ro").chmod(0o755)


@pytest.mark.parametrize("workers", [1, 3])
def test_progress_counts_up_to_every_file_and_symlink(tmp_path: Path, workers: int) -> None:
    source = generate_node_modules(tmp_path / "src", files=3000).root
    listing = list_tree(source)
    seen: list[tuple[int, int]] = []

    copy_tree(CopyRequest(source, tmp_path / "dest", "hardlink", workers=workers),
              lambda done, total: seen.append((done, total)))

    total = len(listing.files) + len(listing.links)
    assert seen[0] == (0, total) and seen[-1] == (total, total)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
    assert len(seen) >= 3


def test_a_file_vanishing_mid_copy_is_an_error_naming_it(tmp_path: Path) -> None:
    source = generate_node_modules(tmp_path / "src", files=100).root
    victim = source / "pkg1" / "package.json"

    def vanish(done: int, total: int) -> None:
        if done == 0:
            victim.unlink()

    with pytest.raises(TreeCopyError, match=r"pkg1/package\.json"):
        copy_tree(CopyRequest(source, tmp_path / "dest", "copy", workers=1), vanish)


def test_the_probe_matches_what_cp_can_do_and_leaves_nothing(tmp_path: Path) -> None:
    (tmp_path / "a").write_text("x")
    cp = subprocess.run(["cp", "--reflink=always", str(tmp_path / "a"), str(tmp_path / "b")],
                        capture_output=True, check=False)
    (tmp_path / "b").unlink(missing_ok=True)
    probe_dir = tmp_path / "dir"
    probe_dir.mkdir()

    caps = FsProbe().capabilities(tmp_path / "a", probe_dir)

    assert caps.reflink == (cp.returncode == 0)
    assert caps.hardlink  # tmp_path is on one local filesystem
    assert list(probe_dir.iterdir()) == []


def test_an_existing_destination_is_an_error_not_a_merge(tmp_path: Path) -> None:
    source = generate_node_modules(tmp_path / "src", files=100).root
    (tmp_path / "dest").mkdir()
    with pytest.raises(TreeCopyError, match="File exists"):
        copy_tree(CopyRequest(source, tmp_path / "dest", "copy"))
    assert list((tmp_path / "dest").iterdir()) == []


def test_a_copy_works_where_the_os_has_no_copy_file_range(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """macOS has no ``os.copy_file_range``: the copy falls back to read/write."""
    source = generate_node_modules(tmp_path / "src", files=50).root
    monkeypatch.delattr(os, "copy_file_range")
    copy_tree(CopyRequest(source, tmp_path / "copied", "copy"))

    assert _snapshot(tmp_path / "copied") == _snapshot(source)
