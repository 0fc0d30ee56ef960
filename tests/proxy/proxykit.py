"""Real servers and clients for the proxy tests: an HTTP app with WebSocket and SSE
endpoints, a proxy running in a thread, a minimal WebSocket client, ledger helpers."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import os
import random
import socket
import struct
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from branchyard.core.identity import derive_identity
from branchyard.dashboard.app import Dashboard
from branchyard.ledger import Ledger, WorktreeRecord
from branchyard.proxy.registry import known_repos, register_repo, registry_path
from branchyard.proxy.routes import RouteTable
from branchyard.proxy.server import ProxyServer
from branchyard.proxy.tls import server_context

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC11B31"


def listen_port() -> int:
    """A free port outside the kernel's ephemeral range, so that no outgoing
    connection on this busy machine can take it between two starts of a server."""
    low, _ = (int(x) for x in Path("/proc/sys/net/ipv4/ip_local_port_range")
              .read_text().split()) if Path("/proc/sys/net/ipv4/ip_local_port_range")\
        .exists() else (32768, 60999)
    for _ in range(200):
        port = random.randrange(max(1024, low - 12000), low)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError("no free port below the ephemeral range")


def wait_for(check: Callable[[], Any], timeout: float = 10.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


class AppHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: App

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: bytes, ctype: str = "application/json",
              headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length", "0")))

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        self.server.record(self)
        route = self.path.split("?")[0]
        if self.headers.get("Upgrade", "").lower() == "websocket":
            self._websocket()
        elif route == "/sse":
            self._sse()
        elif route == "/chunked":
            self._chunked()
        elif route == "/big":
            self._big(int(self.path.split("=")[1]))
        elif route == "/short":  # promises n bytes, sends half, dies
            self._big(int(self.path.split("=")[1]), stop_after=0.5)
        elif route == "/close":
            self.connection.shutdown(socket.SHUT_RDWR)  # die before answering
        elif route in ("/set", "/echo"):
            self._cookie_page(route)
        else:
            self._send(200, json.dumps(self._echo()).encode())

    def do_POST(self) -> None:
        self.server.record(self)
        body = self._read_body()
        reply = {**self._echo(), "received": len(body),
                 "sha256": hashlib.sha256(body).hexdigest()}
        self._send(200, json.dumps(reply).encode())

    def _echo(self) -> dict[str, Any]:
        return {"name": self.server.name, "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()},
                "client_port": self.client_address[1]}

    def _chunked(self) -> None:
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for part in (b"hello ", b"chunked ", b"world"):
            self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
        self.wfile.write(b"0\r\nX-Trailer: yes\r\n\r\n")

    def _big(self, size: int, stop_after: float = 1.0) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(size))
        self.end_headers()
        block = b"x" * 65536
        left = size
        while left > size * (1 - stop_after):
            n = min(left, len(block))
            self.wfile.write(block[:n])
            left -= n
        if left:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)

    def _sse(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        for i in range(3):
            self.wfile.write(f"data: event {i}\n\n".encode())
            self.wfile.flush()
            # the next event waits until the client saw this one (proves streaming)
            self.server.sse_gate.wait(5)
            self.server.sse_gate.clear()

    def _websocket(self) -> None:
        key = self.headers["Sec-WebSocket-Key"]
        accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        proto = self.headers.get("Sec-WebSocket-Protocol")
        if proto:
            self.send_header("Sec-WebSocket-Protocol", proto.split(",")[0].strip())
        self.end_headers()
        self.close_connection = True
        while True:
            frame = read_frame(self.rfile.read)
            if frame is None or frame[0] == 0x8:
                return
            self.wfile.write(make_frame(frame[0], b"echo:" + frame[1], mask=False))
            self.wfile.flush()

    def _cookie_page(self, route: str) -> None:
        cookie = self.headers.get("Cookie", "")
        value = self.path.partition("v=")[2]
        script = (f"localStorage.setItem('who', {json.dumps(value)});" if route == "/set"
                  else "")
        page = (f"<html><body><pre id=cookie>{cookie}</pre><script>{script}"
                "document.title = 'ls=' + localStorage.getItem('who');</script>"
                "</body></html>").encode()
        headers = {"Set-Cookie": f"who={value}; Path=/"} if route == "/set" else {}
        self._send(200, page, "text/html", headers)


class App(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, name: str, host: str = "127.0.0.1", port: int = 0) -> None:
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        super().__init__((host, port), AppHandler)
        self.name = name
        self.requests: list[dict[str, Any]] = []
        self.peers: set[int] = set()
        self.sse_gate = threading.Event()
        self.open_sockets: set[socket.socket] = set()
        self._thread = threading.Thread(target=self.serve_forever, args=(0.02,), daemon=True)
        self._thread.start()

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def record(self, handler: AppHandler) -> None:
        self.requests.append({"path": handler.path,
                              "cookie": handler.headers.get("Cookie", ""),
                              "loop_marks": handler.headers.get_all("X-Branchyard-Proxy", [])})
        self.peers.add(handler.client_address[1])

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients the tests cut off on purpose; the assertions are elsewhere

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, addr = super().get_request()
        self.open_sockets.add(sock)
        return sock, addr

    def stop(self) -> None:
        """Stop listening and drop every open connection, like a killed dev server."""
        self.shutdown()
        self.server_close()
        for sock in list(self.open_sockets):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class ProxyThread:
    """A real ProxyServer on an ephemeral loopback port, in its own thread."""

    def __init__(self, tls_dir: Path | None = None) -> None:
        """``tls_dir``: serve HTTPS with the local CA kept there."""
        self.loop = asyncio.new_event_loop()
        routes = RouteTable(known_repos, registry_path())
        tls = server_context(tls_dir, routes.serves_name) if tls_dir else None
        env = dict(os.environ)

        def serve() -> None:
            os.environ.update(env)
            asyncio.set_event_loop(self.loop)
            self.loop.run_forever()

        async def started() -> ProxyServer:
            server = ProxyServer(routes, 0, tls=tls, handler=Dashboard)  # as `proxy run`
            await server.start()
            return server

        self._thread = threading.Thread(target=serve, daemon=True)
        self._thread.start()
        self.server = asyncio.run_coroutine_threadsafe(started(), self.loop).result(10)
        self.port = self.server.port

    def stop(self) -> None:
        fut = asyncio.run_coroutine_threadsafe(self.server.close(), self.loop)
        fut.result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


def add_worktree(common_dir: Path, branch: str, ports: dict[str, int],
                 path: Path | None = None) -> WorktreeRecord:
    """Record a worktree in the repository's ledger, as `setup` does."""
    with Ledger(common_dir).update() as state:
        ident = derive_identity(branch, taken_subdomains={w.subdomain for w in
                                                          state.worktrees.values()},
                                taken_indexes={w.index for w in state.worktrees.values()})
        rec = WorktreeRecord(slug=ident.slug, subdomain=ident.subdomain, branch=branch,
                             index=ident.index, path=str(path or common_dir.parent),
                             state="ready", ports=dict(ports))
        state.worktrees[rec.slug] = rec
    register_repo(common_dir)
    return rec


def remove_worktree(common_dir: Path, slug: str) -> None:
    with Ledger(common_dir).update() as state:
        del state.worktrees[slug]


def request(port: int, host: str, path: str = "/", method: str = "GET",
            body: bytes | None = None, headers: dict[str, str] | None = None,
            sock: socket.socket | None = None) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 request over a raw socket (kept open if ``sock`` is given)."""
    own = sock is None
    conn = sock or socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
        for k, v in (headers or {}).items():
            lines.append(f"{k}: {v}")
        if body is not None:
            lines.append(f"Content-Length: {len(body)}")
        conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b""))
        return read_response(conn, method)
    finally:
        if own:
            conn.close()


def read_response(conn: socket.socket, method: str = "GET"
                  ) -> tuple[int, dict[str, str], bytes]:
    reader = conn.makefile("rb")
    status_line = reader.readline()
    status = int(status_line.split()[1])
    headers: dict[str, str] = {}
    while True:
        line = reader.readline().decode("latin-1").rstrip("\r\n")
        if not line:
            break
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    if method == "HEAD" or status in (204, 304) or status < 200:
        return status, headers, b""
    if headers.get("transfer-encoding", "").lower() == "chunked":
        parts = []
        while True:
            size = int(reader.readline().split(b";")[0], 16)
            if size == 0:
                while reader.readline() not in (b"\r\n", b""):
                    pass
                break
            parts.append(reader.read(size))
            reader.readline()
        return status, headers, b"".join(parts)
    if "content-length" in headers:
        return status, headers, reader.read(int(headers["content-length"]))
    return status, headers, reader.read()


def make_frame(opcode: int, payload: bytes, mask: bool = True) -> bytes:
    head = bytes([0x80 | opcode])
    n = len(payload)
    bit = 0x80 if mask else 0
    if n < 126:
        head += bytes([bit | n])
    elif n < 65536:
        head += bytes([bit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([bit | 127]) + struct.pack("!Q", n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def read_frame(read: Callable[[int], bytes]) -> tuple[int, bytes] | None:
    head = read(2)
    if len(head) < 2:
        return None
    opcode, n = head[0] & 0x0F, head[1] & 0x7F
    if n == 126:
        n = struct.unpack("!H", read(2))[0]
    elif n == 127:
        n = struct.unpack("!Q", read(8))[0]
    key = read(4) if head[1] & 0x80 else b""
    payload = read(n)
    if key:
        payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return opcode, payload


class WebSocket:
    """A minimal WebSocket client (RFC 6455) over a plain socket."""

    def __init__(self, port: int, host: str, path: str = "/ws",
                 protocols: str = "") -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [f"GET {path} HTTP/1.1", f"Host: {host}", "Upgrade: websocket",
                 "Connection: Upgrade", f"Sec-WebSocket-Key: {key}",
                 "Sec-WebSocket-Version: 13"]
        if protocols:
            lines.append(f"Sec-WebSocket-Protocol: {protocols}")
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.reader = self.sock.makefile("rb")
        self.status = int(self.reader.readline().split()[1])
        self.headers: dict[str, str] = {}
        while True:
            line = self.reader.readline().decode().rstrip("\r\n")
            if not line:
                break
            k, _, v = line.partition(":")
            self.headers[k.strip().lower()] = v.strip()
        expected = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        self.accepted = self.headers.get("sec-websocket-accept") == expected

    def send(self, data: bytes, opcode: int = 0x1) -> None:
        self.sock.sendall(make_frame(opcode, data))

    def recv(self) -> tuple[int, bytes] | None:
        return read_frame(self.reader.read)

    def close(self) -> None:
        try:
            self.send(b"", 0x8)
        finally:
            self.sock.close()
