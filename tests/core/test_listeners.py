"""Dev servers started without `branchyard run` listen on the wrong port: found."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from branchyard.system.listeners import stray_listeners


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def serve() -> Iterator[object]:
    started: list[subprocess.Popen[bytes]] = []

    def start(cwd: Path, port: int) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen([sys.executable, "-m", "http.server", "--bind", "127.0.0.1",
                                 str(port)], cwd=cwd, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        started.append(proc)
        for _ in range(100):  # bounded: up to 5 s for it to listen
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    return proc
            time.sleep(0.05)
        raise AssertionError("the test server never listened")

    yield start
    for proc in started:
        proc.kill()
        proc.wait()


def test_a_server_on_another_worktrees_port_is_found(tmp_path: Path, serve: object) -> None:
    main, feat = tmp_path / "main", tmp_path / "feat"
    main.mkdir()
    feat.mkdir()
    main_port, feat_port = _free_port(), _free_port()
    worktrees = {str(main): {"PORT": main_port}, str(feat): {"PORT": feat_port}}
    apps = {str(main): main_port, str(feat): feat_port}
    assert stray_listeners(worktrees, apps) == []

    proc = serve(feat, main_port)  # type: ignore[operator]
    [stray] = stray_listeners(worktrees, apps)
    assert (stray.root, stray.pid, stray.port, stray.expected, stray.owner) == (
        str(feat), proc.pid, main_port, feat_port, str(main))
    text = stray.message({str(feat): "feat/a", str(main): "the main worktree"})
    assert text.startswith(f"feat/a: `{sys.executable} -m http.server")
    assert (f"listens on port {main_port}, the main worktree's port, instead of its own port "
            f"{feat_port}; start it with `branchyard run`") in text


def test_a_server_on_its_own_port_or_beside_it_is_fine(tmp_path: Path, serve: object) -> None:
    feat = tmp_path / "feat"
    feat.mkdir()
    own, other, elsewhere = _free_port(), _free_port(), _free_port()
    worktrees = {str(feat): {"PORT": own}}
    serve(feat, other)  # type: ignore[operator]
    [stray] = stray_listeners(worktrees, {str(feat): own})  # nothing on its own port
    assert (stray.port, stray.owner) == (other, "")
    serve(feat, own)  # type: ignore[operator]
    assert stray_listeners(worktrees, {str(feat): own}) == []  # a second server beside it
    serve(tmp_path, elsewhere)  # type: ignore[operator]  # outside every worktree
    assert stray_listeners(worktrees, {str(feat): own}) == []


def test_the_kernels_listening_sockets_agree_with_proc() -> None:
    from branchyard.system.listeners import _proc_listening, _sock_diag_listening

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        inode = os.fstat(sock.fileno()).st_ino
        fast = _sock_diag_listening()
        assert fast[inode] == port
        assert fast == _proc_listening()
