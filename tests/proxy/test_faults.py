"""Bad input and faults: the proxy answers clearly and stays up."""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

from proxykit import (
    App,
    ProxyThread,
    add_worktree,
    listen_port,
    read_response,
    remove_worktree,
    request,
    wait_for,
)

from branchyard.proxy.routes import LEDGER_RECHECK


def _ok(proxy: ProxyThread, host: str) -> bool:
    return request(proxy.port, host)[0] == 200


def test_nothing_listening_gives_502_naming_worktree_and_command(
        repo: Path, common_dir: Path, proxy: ProxyThread) -> None:
    (repo / "branchyard.toml").write_text('[hooks]\nrun = "bun run dev"\n')
    port = listen_port()
    rec = add_worktree(common_dir, "feat/down", {"PORT": port})
    status, headers, body = request(proxy.port, "feat-down.app.localhost")
    page = body.decode()
    assert status == 502
    assert headers["connection"] == "close"
    assert rec.slug in page
    assert "feat/down" in page
    assert str(port) in page
    # bare `branchyard run` runs `[hooks] run`, `bun run dev`, with the port set
    assert f"cd {repo} &amp;&amp; branchyard run</code>" in page


def test_unknown_host_gives_404_listing_live_worktrees(
        common_dir: Path, proxy: ProxyThread) -> None:
    add_worktree(common_dir, "feat/one", {"PORT": listen_port()})
    status, _, body = request(proxy.port, "nope.app.localhost")
    page = body.decode()
    assert status == 404
    assert f"http://feat-one.app.localhost:{proxy.port}" in page
    assert f"http://app.localhost:{proxy.port}" in page
    assert "feat/one" in page


def test_request_looping_into_the_proxy_gives_508(
        common_dir: Path, proxy: ProxyThread) -> None:
    add_worktree(common_dir, "feat/loop", {"PORT": proxy.port})
    assert request(proxy.port, "feat-loop.app.localhost")[0] == 508


def test_malformed_requests_get_400_and_the_proxy_stays_up(
        common_dir: Path, proxy: ProxyThread, apps: list[App]) -> None:
    a = App("a")
    apps.append(a)
    add_worktree(common_dir, "feat/a", {"PORT": a.port})
    bad = [b"NONSENSE\r\n\r\n", b"GET / HTTP/9.9\r\nHost: x\r\n\r\n",
           b"GET / HTTP/1.1\r\n\r\n",
           b"GET / HTTP/1.1\r\nHost: feat-a.app.localhost\r\nbad header\r\n\r\n",
           b"POST / HTTP/1.1\r\nHost: feat-a.app.localhost\r\nContent-Length: 3\r\n"
           b"Transfer-Encoding: chunked\r\n\r\n",
           b"POST / HTTP/1.1\r\nHost: feat-a.app.localhost\r\nContent-Length: -1\r\n\r\n",
           b"GET / HTTP/1.1\r\nHost: feat-a.app.localhost\r\nX: " + b"y" * 70_000]
    for raw in bad:
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as sock:
            sock.sendall(raw)
            status, headers, _ = read_response(sock)
            assert status in (400, 431), raw
            assert headers["connection"] == "close"
    assert _ok(proxy, "feat-a.app.localhost")


def test_bad_chunk_size_in_upload_closes_that_connection_only(
        common_dir: Path, proxy: ProxyThread, apps: list[App]) -> None:
    a = App("a")
    apps.append(a)
    add_worktree(common_dir, "feat/a", {"PORT": a.port})
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: feat-a.app.localhost\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\nzz\r\n")
        status, headers, body = read_response(sock)
        assert (status, headers["connection"]) == (400, "close")
        assert b"invalid chunk size" in body
    assert _ok(proxy, "feat-a.app.localhost")


def test_slow_client_does_not_delay_others(
        common_dir: Path, proxy: ProxyThread, apps: list[App]) -> None:
    a = App("a")
    apps.append(a)
    add_worktree(common_dir, "feat/a", {"PORT": a.port})
    slow_head = socket.create_connection(("127.0.0.1", proxy.port), timeout=10)
    slow_reader = socket.create_connection(("127.0.0.1", proxy.port), timeout=10)
    try:
        slow_head.sendall(b"GET / HTTP/1.1\r\nHost: feat-a.app")  # and never finishes
        slow_reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        slow_reader.sendall(b"GET /big?n=%d HTTP/1.1\r\nHost: feat-a.app.localhost\r\n\r\n"
                            % (200 << 20))  # and never reads
        for _ in range(20):
            assert _ok(proxy, "feat-a.app.localhost")
    finally:
        slow_head.close()
        slow_reader.close()


def test_app_dying_mid_request_gives_502_and_proxy_stays_up(
        common_dir: Path, proxy: ProxyThread, apps: list[App]) -> None:
    a = App("a")
    apps.append(a)
    add_worktree(common_dir, "feat/a", {"PORT": a.port})
    status, _, body = request(proxy.port, "feat-a.app.localhost", "/close")
    assert status == 502
    assert b"feat/a" in body
    assert _ok(proxy, "feat-a.app.localhost")


def test_app_stopping_between_requests_is_retried_or_502(
        common_dir: Path, proxy: ProxyThread, apps: list[App]) -> None:
    a = App("a", port=listen_port())  # a port no outgoing connection takes meanwhile
    add_worktree(common_dir, "feat/a", {"PORT": a.port})
    assert _ok(proxy, "feat-a.app.localhost")  # leaves a pooled app connection
    a.stop()
    status, _, body = request(proxy.port, "feat-a.app.localhost")
    assert status == 502
    b = App("b", port=a.port)  # the app comes back on the same port
    apps.append(b)
    status, _, body = request(proxy.port, "feat-a.app.localhost")
    assert (status, json.loads(body)["name"]) == (200, "b")


def test_removed_worktree_route_disappears_with_connections_open(
        common_dir: Path, proxy: ProxyThread, apps: list[App]) -> None:
    a = App("a")
    apps.append(a)
    rec = add_worktree(common_dir, "feat/a", {"PORT": a.port})
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as sock:
        assert request(proxy.port, "feat-a.app.localhost", sock=sock)[0] == 200
        remove_worktree(common_dir, rec.slug)
        time.sleep(LEDGER_RECHECK)  # a known host is re-checked this often
        status, _, body = request(proxy.port, "feat-a.app.localhost", sock=sock)
        assert status == 404
        assert b"feat-a.app.localhost" in body
    assert request(proxy.port, "app.localhost")[0] in (502, 200)  # proxy still answers


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_client_leaving_mid_download_frees_everything(
        common_dir: Path, proxy: ProxyThread, apps: list[App]) -> None:
    a = App("a")
    apps.append(a)
    add_worktree(common_dir, "feat/a", {"PORT": a.port})
    assert _ok(proxy, "feat-a.app.localhost")
    baseline = _open_fds()
    for _ in range(3):
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as sock:
            sock.sendall(b"GET /big?n=%d HTTP/1.1\r\nHost: feat-a.app.localhost\r\n\r\n"
                         % (500 << 20))
            got = 0
            while got < 4 << 20:
                got += len(sock.recv(1 << 20))
    wait_for(lambda: _open_fds() <= baseline + 2, what="the proxy to release descriptors")
    assert _ok(proxy, "feat-a.app.localhost")


def test_app_dying_mid_body_cuts_the_client_off_and_proxy_stays_up(
        common_dir: Path, proxy: ProxyThread, apps: list[App]) -> None:
    a = App("a")
    apps.append(a)
    add_worktree(common_dir, "feat/a", {"PORT": a.port})
    size = 20 << 20
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as sock:
        sock.sendall(b"GET /short?n=%d HTTP/1.1\r\nHost: feat-a.app.localhost\r\n\r\n"
                     % size)
        got = b""
        try:
            while chunk := sock.recv(1 << 20):
                got += chunk
        except ConnectionResetError:
            pass
    assert got.startswith(b"HTTP/1.1 200")
    assert len(got) < size  # the client sees the cut, never a complete-looking body
    assert _ok(proxy, "feat-a.app.localhost")


def test_stalled_request_head_gets_408_after_the_deadline(
        common_dir: Path, proxy: ProxyThread) -> None:
    proxy.server.head_deadline = 0.3
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: feat")
        status, headers, body = read_response(sock)
    assert (status, headers["connection"]) == (408, "close")
    assert b"longer than 0.3 s" in body
