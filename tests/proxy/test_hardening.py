"""Hostile clients: a trickled head, bytes that are not HTTP, a forged loop token."""

from __future__ import annotations

import json
import random
import select
import socket
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread

import pytest
from proxykit import App, ProxyThread, add_worktree, read_response, request


def _raw(port: int, data: bytes) -> tuple[int, dict[str, str], bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        return read_response(sock)


def _trickle(sock: socket.socket, data: bytes) -> int:
    """Send ``data`` a byte every 10 ms until the proxy answers; the bytes sent."""
    for sent, byte in enumerate(data):
        if select.select([sock], [], [], 0)[0]:
            return sent
        sock.sendall(bytes([byte]))
        time.sleep(0.01)  # each byte well inside any per-read timeout
    return len(data)


def test_a_head_trickled_a_byte_at_a_time_is_cut_at_the_total_deadline(
        common_dir: Path, proxy: ProxyThread, apps: list[App]) -> None:
    proxy.server.head_deadline = 0.6
    head = b"GET / HTTP/1.1\r\nHost: feat-a.app.localhost\r\nX-Slow: " + b"y" * 400
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as sock:
        sent = _trickle(sock, head)
        elapsed = time.monotonic() - started
        status, headers, _ = read_response(sock)
    assert (status, headers["connection"]) == (408, "close")
    assert 0.5 < elapsed < 3.0
    assert sent < len(head)


@pytest.mark.parametrize("raw", [
    b"GET /\r\n",  # HTTP/0.9: no version, no headers
    random.Random(11).randbytes(300),
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",  # a TLS hello to the plain port
    b"GET / HTTP/1.1\r\nHost: feat-a.app.localhost\r\nX: a\x00b\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: feat-a.app.localhost\r\nX: a\nY: b\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: feat-a.app.localhost\rX: b\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: feat-a.app.localhost\r\nTransfer-Encoding: xchunked\r\n\r\n"
    b"0\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: feat-a.app.localhost\r\nTransfer-Encoding: gzip, chunked"
    b"\r\n\r\n0\r\n\r\n",
])
def test_what_is_not_http_gets_a_400_page_at_once(
        raw: bytes, common_dir: Path, proxy: ProxyThread, apps: list[App]) -> None:
    app = App("a")
    apps.append(app)
    add_worktree(common_dir, "feat/a", {"PORT": app.port})
    status, headers, body = _raw(proxy.port, raw)
    assert (status, headers["connection"]) == (400, "close")
    assert b"could not parse the request" in body
    assert app.requests == []


def test_an_absolute_form_target_decides_the_route_and_the_host(
        common_dir: Path, proxy: ProxyThread, apps: list[App]) -> None:
    a, b = App("a"), App("b")
    apps.extend((a, b))
    add_worktree(common_dir, "feat/a", {"PORT": a.port})
    add_worktree(common_dir, "feat/b", {"PORT": b.port})
    status, _, body = _raw(proxy.port, b"GET http://feat-b.app.localhost:1355/x?q=1 HTTP/1.1"
                                       b"\r\nHost: feat-a.app.localhost\r\nConnection: close"
                                       b"\r\n\r\n")
    echo = json.loads(body)
    assert (status, echo["name"], echo["path"]) == (200, "b", "/x?q=1")
    assert echo["headers"]["host"] == "feat-b.app.localhost:1355"
    assert echo["headers"]["x-forwarded-host"] == "feat-b.app.localhost:1355"


class _Relay(BaseHTTPRequestHandler):
    """An app that forwards each request, headers and all, to its own dev URL."""

    proxy_port = 0

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
        status, _, _ = request(self.proxy_port, self.headers["Host"], headers=headers)
        body = json.dumps({"inner": status}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_a_real_loop_gets_508_but_a_forged_loop_token_is_stripped(
        common_dir: Path, proxy: ProxyThread, apps: list[App]) -> None:
    a = App("a")
    apps.append(a)
    add_worktree(common_dir, "feat/a", {"PORT": a.port})
    mark = json.loads(request(proxy.port, "feat-a.app.localhost")[2])["headers"][
        "x-branchyard-proxy"]
    for forged in (mark, "anything"):  # a token seen before, and a made-up one
        status, _, body = request(proxy.port, "feat-a.app.localhost",
                                  headers={"X-Branchyard-Proxy": forged})
        assert status == 200
        seen = json.loads(body)["headers"]["x-branchyard-proxy"]
        assert forged not in seen
        assert a.requests[-1]["loop_marks"] == [seen]
    _Relay.proxy_port = proxy.port
    relay = ThreadingHTTPServer(("127.0.0.1", 0), _Relay)
    Thread(target=relay.serve_forever, daemon=True).start()
    try:
        add_worktree(common_dir, "feat/relay", {"PORT": relay.server_address[1]})
        status, _, body = request(proxy.port, "feat-relay.app.localhost")
        assert (status, json.loads(body)) == (200, {"inner": 508})
    finally:
        relay.shutdown()
        relay.server_close()
