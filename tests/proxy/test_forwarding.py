"""Real apps behind the real proxy: routing, headers, framing, streaming, upgrades."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest
from proxykit import App, ProxyThread, WebSocket, add_worktree, read_response, request


def _app(apps: list[App], name: str, host: str = "127.0.0.1") -> App:
    app = App(name, host)
    apps.append(app)
    return app


def test_routes_by_host_and_adds_forwarded_headers(
        common_dir: Path, proxy: ProxyThread, apps: list[App]) -> None:
    a, b = _app(apps, "a"), _app(apps, "b")
    add_worktree(common_dir, "feat/a", {"PORT": a.port})
    add_worktree(common_dir, "feat/b", {"PORT": b.port})

    status, _, body = request(proxy.port, "feat-a.app.localhost:1355", "/x?y=1")
    echo = json.loads(body)
    assert status == 200
    assert echo["name"] == "a"
    assert echo["path"] == "/x?y=1"
    assert echo["headers"]["host"] == "feat-a.app.localhost:1355"
    assert echo["headers"]["x-forwarded-for"] == "127.0.0.1"
    assert echo["headers"]["x-forwarded-proto"] == "http"
    assert echo["headers"]["x-forwarded-host"] == "feat-a.app.localhost:1355"
    assert json.loads(request(proxy.port, "FEAT-B.app.localhost")[2])["name"] == "b"


def test_forwarded_for_chain_is_extended_and_spoofed_proto_replaced(
        common_dir: Path, proxy: ProxyThread, apps: list[App]) -> None:
    a = _app(apps, "a")
    add_worktree(common_dir, "feat/a", {"PORT": a.port})
    _, _, body = request(proxy.port, "feat-a.app.localhost", headers={
        "X-Forwarded-For": "10.1.2.3", "X-Forwarded-Proto": "https"})
    headers = json.loads(body)["headers"]
    assert headers["x-forwarded-for"] == "10.1.2.3, 127.0.0.1"
    assert headers["x-forwarded-proto"] == "http"


def test_named_ports_get_service_hosts_and_main_gets_project_host(
        repo: Path, common_dir: Path, proxy: ProxyThread, apps: list[App]) -> None:
    web, api, main = _app(apps, "web"), _app(apps, "api"), _app(apps, "main")
    (repo / "branchyard.toml").write_text('[ports]\nnames = ["PORT", "API_PORT"]\n')
    (repo / ".env").write_text(f"PORT={main.port}\n")
    add_worktree(common_dir, "feat/x", {"PORT": web.port, "API_PORT": api.port})

    assert json.loads(request(proxy.port, "feat-x.app.localhost")[2])["name"] == "web"
    assert json.loads(request(proxy.port, "api.feat-x.app.localhost")[2])["name"] == "api"
    assert json.loads(request(proxy.port, "app.localhost")[2])["name"] == "main"


def test_a_clients_connection_close_is_not_passed_to_the_app(
        common_dir: Path, proxy: ProxyThread, apps: list[App]) -> None:
    """Fresh connections that each say ``Connection: close`` share one app connection;
    each client is told, and sees, that its own connection closes."""
    a = _app(apps, "a")
    add_worktree(common_dir, "feat/a", {"PORT": a.port})
    for i in range(3):
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as sock:
            status, headers, body = request(proxy.port, "feat-a.app.localhost", f"/{i}",
                                            headers={"Connection": "close"}, sock=sock)
            assert (status, json.loads(body)["path"]) == (200, f"/{i}")
            assert headers["connection"] == "close"
            assert sock.recv(1) == b""  # the proxy closed the client's connection
    assert len(a.peers) == 1  # the app kept one connection from the proxy throughout


def test_keep_alive_reuses_one_app_connection(
        common_dir: Path, proxy: ProxyThread, apps: list[App]) -> None:
    a = _app(apps, "a")
    add_worktree(common_dir, "feat/a", {"PORT": a.port})
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as sock:
        for i in range(20):
            status, _, body = request(proxy.port, "feat-a.app.localhost", f"/{i}",
                                      sock=sock)
            assert status == 200
            assert json.loads(body)["path"] == f"/{i}"
        status, headers, body = request(proxy.port, "feat-a.app.localhost", "/h",
                                        method="HEAD", sock=sock)
        assert status == 200
        assert body == b""
        assert int(headers["content-length"]) > 0
        assert request(proxy.port, "feat-a.app.localhost", "/after-head", sock=sock)[0] == 200
    assert len(a.peers) == 1  # every request went over the same app connection


def test_chunked_response_and_chunked_upload_pass_untouched(
        common_dir: Path, proxy: ProxyThread, apps: list[App]) -> None:
    a = _app(apps, "a")
    add_worktree(common_dir, "feat/a", {"PORT": a.port})
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as sock:
        status, headers, body = request(proxy.port, "feat-a.app.localhost", "/chunked",
                                        sock=sock)
        assert (status, headers["transfer-encoding"], body) == (
            200, "chunked", b"hello chunked world")
        payload = os.urandom(300_000)
        chunks = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in
                          (payload[:1000], payload[1000:200_000], payload[200_000:]))
        sock.sendall(b"POST /up HTTP/1.1\r\nHost: feat-a.app.localhost\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n" + chunks + b"0\r\n\r\n")
        status, _, body = read_response(sock)
        reply = json.loads(body)
        assert reply["received"] == len(payload)
        assert reply["sha256"] == hashlib.sha256(payload).hexdigest()
        # the connection is still usable after a chunked upload
        assert request(proxy.port, "feat-a.app.localhost", "/next", sock=sock)[0] == 200


def test_large_upload_and_download(common_dir: Path, proxy: ProxyThread,
                                   apps: list[App]) -> None:
    a = _app(apps, "a")
    add_worktree(common_dir, "feat/a", {"PORT": a.port})
    payload = os.urandom(64 << 20)
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as sock:
        for _ in range(2):  # large bodies leave the connection usable both ways
            status, _, body = request(proxy.port, "feat-a.app.localhost", "/upload", "POST",
                                      body=payload, sock=sock)
            reply = json.loads(body)
            assert (status, reply["received"]) == (200, len(payload))
            assert reply["sha256"] == hashlib.sha256(payload).hexdigest()
            status, _, body = request(proxy.port, "feat-a.app.localhost",
                                      f"/big?n={100 << 20}", sock=sock)
            assert (status, len(body), body[-3:]) == (200, 100 << 20, b"xxx")


def test_websocket_echo_with_any_subprotocol(common_dir: Path, proxy: ProxyThread,
                                             apps: list[App]) -> None:
    a = _app(apps, "a")
    add_worktree(common_dir, "feat/a", {"PORT": a.port})
    ws = WebSocket(proxy.port, "feat-a.app.localhost", protocols="vite-hmr, other")
    try:
        assert ws.status == 101
        assert ws.accepted
        assert ws.headers["sec-websocket-protocol"] == "vite-hmr"
        ws.send(b"hello")
        assert ws.recv() == (0x1, b"echo:hello")
        big = os.urandom(200_000)
        ws.send(big, opcode=0x2)
        assert ws.recv() == (0x2, b"echo:" + big)
    finally:
        ws.close()


def test_server_sent_events_stream_as_they_happen(
        common_dir: Path, proxy: ProxyThread, apps: list[App]) -> None:
    a = _app(apps, "a")
    add_worktree(common_dir, "feat/a", {"PORT": a.port})
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as sock:
        sock.sendall(b"GET /sse HTTP/1.1\r\nHost: feat-a.app.localhost\r\n"
                     b"Accept: text/event-stream\r\n\r\n")
        reader = sock.makefile("rb")
        assert reader.readline().startswith(b"HTTP/1.1 200")
        while reader.readline() != b"\r\n":
            pass
        for i in range(3):
            # the app sends event i+1 only after we saw event i: no buffering in between
            assert reader.readline() == f"data: event {i}\n".encode()
            assert reader.readline() == b"\n"
            a.sse_gate.set()
        assert reader.read() == b""  # the app closed: the stream ends cleanly


def test_proxy_answers_on_ipv6_loopback_too(common_dir: Path, proxy: ProxyThread,
                                            apps: list[App]) -> None:
    a = _app(apps, "a")
    add_worktree(common_dir, "feat/a", {"PORT": a.port})
    with socket.create_connection(("::1", proxy.port), timeout=10) as sock:
        status, _, body = request(proxy.port, "feat-a.app.localhost", sock=sock)
    assert (status, json.loads(body)["headers"]["x-forwarded-for"]) == (200, "::1")


def test_ipv6_only_app_is_reached(common_dir: Path, proxy: ProxyThread,
                                  apps: list[App]) -> None:
    a = _app(apps, "v6", host="::1")
    add_worktree(common_dir, "feat/v6", {"PORT": a.port})
    status, _, body = request(proxy.port, "feat-v6.app.localhost")
    assert (status, json.loads(body)["name"]) == (200, "v6")


def test_expect_100_continue_is_relayed(common_dir: Path, proxy: ProxyThread,
                                        apps: list[App]) -> None:
    a = _app(apps, "a")
    add_worktree(common_dir, "feat/a", {"PORT": a.port})
    body = b"z" * 5000
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as sock:
        sock.sendall(b"POST /up HTTP/1.1\r\nHost: feat-a.app.localhost\r\n"
                     b"Expect: 100-continue\r\nContent-Length: 5000\r\n\r\n")
        interim = b""
        while not interim.endswith(b"\r\n\r\n"):
            interim += sock.recv(1)
        assert interim.startswith(b"HTTP/1.1 100")
        sock.sendall(body)
        status, _, reply = read_response(sock)
    assert (status, json.loads(reply)["received"]) == (200, 5000)


def test_big_chunked_upload_as_first_request_while_the_proxy_connects(
        common_dir: Path, proxy: ProxyThread, apps: list[App]) -> None:
    a = _app(apps, "a")
    add_worktree(common_dir, "feat/a", {"PORT": a.port})
    payload = os.urandom(6 << 20)
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(payload[i:i + 65536]), payload[i:i + 65536])
                      for i in range(0, len(payload), 65536))
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as sock:
        sock.sendall(b"POST /up HTTP/1.1\r\nHost: feat-a.app.localhost\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n" + chunks + b"0\r\n\r\n")
        status, _, body = read_response(sock)
    reply = json.loads(body)
    assert (status, reply["received"]) == (200, len(payload))
    assert reply["sha256"] == hashlib.sha256(payload).hexdigest()


def test_half_closed_client_still_gets_its_answer_and_stray_crlf_is_ignored(
        common_dir: Path, proxy: ProxyThread, apps: list[App]) -> None:
    a = _app(apps, "a")
    add_worktree(common_dir, "feat/a", {"PORT": a.port})
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as sock:
        sock.sendall(b"\r\n\r\nGET /half HTTP/1.1\r\nHost: feat-a.app.localhost\r\n\r\n")
        sock.shutdown(socket.SHUT_WR)
        status, _, body = read_response(sock)
        assert (status, json.loads(body)["path"]) == (200, "/half")
        assert sock.recv(10) == b""  # and then the proxy closes


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
def test_curl_reaches_worktrees_by_name(common_dir: Path, proxy: ProxyThread,
                                        apps: list[App], tmp_path: Path) -> None:
    a = _app(apps, "a")
    add_worktree(common_dir, "feat/a", {"PORT": a.port})
    url = f"http://feat-a.app.localhost:{proxy.port}/c"
    resolve = f"feat-a.app.localhost:{proxy.port}:127.0.0.1"
    done = subprocess.run(["curl", "-sS", "--resolve", resolve, url], capture_output=True,
                          timeout=30, check=True)
    assert json.loads(done.stdout)["headers"]["host"] == f"feat-a.app.localhost:{proxy.port}"
    upload = tmp_path / "upload.bin"
    upload.write_bytes(os.urandom(3 << 20))
    done = subprocess.run(["curl", "-sS", "--resolve", resolve, "-H",
                           "Transfer-Encoding: chunked", "--data-binary", f"@{upload}", url],
                          capture_output=True, timeout=30, check=True)
    assert json.loads(done.stdout)["received"] == 3 << 20
