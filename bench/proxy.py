"""Direct vs through the branchyard proxy, with nginx and portless measured alike.

    python bench/proxy.py            # 5,000 keep-alive requests on 1, 6 and 64
                                     # connections, 500 fresh connections, 1 GiB body
    python bench/proxy.py --quick    # a smaller run

Two backends answer: ``node`` (node:http, which Vite, Next and Express dev servers
answer with) and ``asyncio`` (a protocol that writes canned bytes: the cheapest
backend there is, so the hardest ratio for any proxy). Each is measured direct,
through the branchyard proxy, and through two references when they are here:
nginx with one worker (a C proxy; ``apt-get install nginx-light``) and portless
(the Node proxy the issue measured; ``npm install -g portless``, or
``--portless PATH``), each on its own loopback port. Rounds alternate between
the hops and each figure is the median of its rounds. Set
BRANCHYARD_PROXY_LOOP=asyncio to force the standard event loop when uvloop is
installed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import psutil

CHUNK = 1 << 20
SMALL = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"
NODE_BACKEND = """
const http = require("http");
const block = Buffer.alloc(1 << 20);
http.createServer((req, res) => {
  if (!req.url.startsWith("/stream?")) {
    res.writeHead(200, {"Content-Type": "text/plain", "Content-Length": 2});
    return res.end("ok");
  }
  let left = Number(req.url.slice(8));
  res.writeHead(200, {"Content-Length": left});
  const pump = () => {
    while (left > 0) {
      const n = Math.min(left, block.length);
      left -= n;
      if (!res.write(n === block.length ? block : block.subarray(0, n)))
        return void res.once("drain", pump);
    }
    res.end();
  };
  pump();
}).listen(Number(process.argv[2]), "127.0.0.1", () => console.log("ready"));
"""
NGINX_CONF = """
worker_processes 1; daemon off; pid {tmp}/nginx.pid; error_log {tmp}/error.log;
events {{ worker_connections 4096; }}
http {{
  access_log off; keepalive_requests 1000000;
  client_body_temp_path {tmp}; proxy_temp_path {tmp};
  upstream app {{ server 127.0.0.1:{backend}; keepalive 64; }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://app; proxy_http_version 1.1; proxy_buffering off;
      proxy_buffer_size 256k; proxy_buffers 4 256k; proxy_set_header Connection "";
      proxy_set_header Host $host; proxy_set_header X-Forwarded-For $remote_addr;
    }}
  }}
}}
"""


class AsyncioBackend(asyncio.Protocol):
    """Answers every GET with 2 bytes, or ``/stream?N`` with N bytes."""

    def __init__(self) -> None:
        self.buf = b""
        self.left = 0
        self.paused = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.set_write_buffer_limits(high=4 * CHUNK)

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head, self.buf = self.buf[:end], self.buf[end + 4:]
            target = head.split(b" ", 2)[1]
            if target.startswith(b"/stream?"):
                self.left = int(target.split(b"?")[1])
                self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n"
                                     % self.left)
                self._pump()
            else:
                self.transport.write(SMALL)

    def _pump(self) -> None:
        assert self.transport is not None
        block = memoryview(bytes(CHUNK))
        while self.left and not self.paused:
            n = min(self.left, CHUNK)
            self.transport.write(block[:n])
            self.left -= n

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        self._pump()


def serve_asyncio(port: int) -> None:
    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(loop.create_server(AsyncioBackend, "127.0.0.1", port))
    print("ready", flush=True)
    try:
        loop.run_forever()
    finally:
        server.close()


@dataclass(frozen=True)
class Hop:
    """Where a client connects and the Host it sends; ``size``: one response's bytes."""

    port: int
    host: str
    size: int = 0


class KeepAliveClient(asyncio.Protocol):
    """Sends ``count`` requests one after another; ``done`` gets how many are left
    (0, or more when the hop closed the connection)."""

    def __init__(self, request: bytes, size: int, count: int,
                 done: asyncio.Future[int]) -> None:
        self.request, self.expect, self.left, self.done = request, size, count, done
        self.got = 0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.got += len(data)
        while self.got >= self.expect:  # a hop's responses are all the same size
            self.got -= self.expect
            self.left -= 1
            if not self.left:
                self.transport.close()
                return
            self.transport.write(self.request)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(self.left)


async def _one_connection(hop: Hop, request: bytes, count: int) -> int:
    """Send ``count`` requests on one keep-alive connection, reconnecting when the
    hop closes it (portless answers ``Connection: close``); how many reconnects."""
    loop = asyncio.get_running_loop()
    reconnects = -1
    while count:
        reconnects += 1
        done: asyncio.Future[int] = loop.create_future()
        await loop.create_connection(partial(KeepAliveClient, request, hop.size, count, done),
                                     "127.0.0.1", hop.port)
        left = await done
        if left == count:
            raise RuntimeError(f"port {hop.port} closed a connection without answering")
        count = left
    return reconnects


async def keep_alive(hop: Hop, total: int, conns: int) -> tuple[float, int]:
    """Requests per second over ``conns`` connections, and how many reconnects."""
    request = f"GET / HTTP/1.1\r\nHost: {hop.host}\r\n\r\n".encode()
    start = time.perf_counter()
    reconnects = await asyncio.gather(*(_one_connection(hop, request, total // conns)
                                        for _ in range(conns)))
    return total / (time.perf_counter() - start), sum(reconnects)


def response_size(hop: Hop) -> int:
    """Bytes of one small response through ``hop`` (a proxy may add headers)."""
    with socket.create_connection(("127.0.0.1", hop.port), timeout=10) as sock:
        sock.sendall(f"GET / HTTP/1.1\r\nHost: {hop.host}\r\n\r\n".encode())
        data = b""
        while not (b"\r\n\r\n" in data and data.endswith(b"ok")):
            chunk = sock.recv(4096)
            if not chunk:
                raise RuntimeError(f"no answer through port {hop.port}: {data[:80]!r}")
            data += chunk
        if not data.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"port {hop.port} answered {data[:80]!r}")
        return len(data)


def fresh_latencies(hop: Hop, count: int) -> list[float]:
    request = f"GET / HTTP/1.1\r\nHost: {hop.host}\r\nConnection: close\r\n\r\n".encode()
    out = []
    buf = bytearray(4096)
    for _ in range(count):
        start = time.perf_counter()
        with socket.create_connection(("127.0.0.1", hop.port)) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.sendall(request)
            got = 0
            while got < hop.size:
                n = sock.recv_into(buf)
                if not n:
                    break
                got += n
        out.append((time.perf_counter() - start) * 1000)
    return out


def stream(hop: Hop, size: int) -> float:
    """MB/s of a ``size``-byte response body."""
    view = memoryview(bytearray(CHUNK))
    with socket.create_connection(("127.0.0.1", hop.port)) as sock:
        sock.sendall(f"GET /stream?{size} HTTP/1.1\r\nHost: {hop.host}\r\n\r\n".encode())
        start = time.perf_counter()
        got = -1
        head = b""
        while got < 0:  # read the head
            head += sock.recv(4096)
            if b"\r\n\r\n" in head:
                got = len(head) - head.index(b"\r\n\r\n") - 4
        while got < size:
            n = sock.recv_into(view)
            if not n:
                raise RuntimeError("stream ended early")
            got += n
        return size / (time.perf_counter() - start) / 1e6


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"nothing listens on {port}")


@contextmanager
def process(args: list[str], port: int, env: dict[str, str] | None = None
            ) -> Iterator[subprocess.Popen[bytes]]:
    """A server that listens on ``port``; stopped (by its pid) on the way out."""
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class BenchRepo:
    """A repository whose ledger routes one worktree per backend."""

    def __init__(self, root: Path) -> None:
        self.env = {**os.environ, "BRANCHYARD_STATE_DIR": str(root / "state"),
                    "GIT_CONFIG_NOSYSTEM": "1"}
        os.environ["BRANCHYARD_STATE_DIR"] = self.env["BRANCHYARD_STATE_DIR"]
        self.repo = root / "app"
        subprocess.run(["git", "init", "-q", str(self.repo)], check=True, env=self.env)
        from branchyard.proxy.registry import register_repo

        register_repo(self.repo / ".git")

    def route(self, name: str, port: int) -> str:
        """Route ``<name>.app.localhost`` to ``port``; return that host."""
        from branchyard.core.identity import derive_identity
        from branchyard.ledger import Ledger, WorktreeRecord

        ident = derive_identity(name)
        with Ledger(self.repo / ".git").update() as state:
            state.worktrees[ident.slug] = WorktreeRecord(
                slug=ident.slug, subdomain=ident.subdomain, branch=name,
                index=len(state.worktrees) + 1, path=str(self.repo), state="ready",
                ports={"PORT": port})
        return f"{ident.subdomain}.app.localhost"


@dataclass(frozen=True)
class Sizes:
    requests: int
    fresh: int
    body: int
    conns: tuple[int, ...]
    rounds: int


class Portless:
    """The portless proxy in plain HTTP, its state in a temporary directory."""

    def __init__(self, cli: str, tmp: Path) -> None:
        self.cli = [cli] if os.access(cli, os.X_OK) and not cli.endswith(".js") \
            else ["node", cli]
        self.port = free_port()
        self.env = {**os.environ, "HOME": str(tmp), "PORTLESS_STATE_DIR": str(tmp),
                    "PORTLESS_SYNC_HOSTS": "0", "PORTLESS_HTTPS": "0",
                    "PORTLESS_PORT": str(self.port)}

    def start(self) -> list[str]:
        return [*self.cli, "proxy", "start", "--no-tls", "-p", str(self.port), "--foreground"]

    def route(self, name: str, port: int) -> str:
        subprocess.run([*self.cli, "alias", name, str(port)], env=self.env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        host = f"{name}.localhost"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # portless picks up its routes file by itself
            try:
                response_size(Hop(self.port, host))
                break
            except RuntimeError:
                time.sleep(0.1)
        return host


def portless_cli(given: str | None) -> str | None:
    if given:
        return given
    found = shutil.which("portless")
    return found if found and shutil.which("node") else None


def run_backend(name: str, stack: ExitStack, tmp: Path, repo: BenchRepo,
                proxy_port: int, portless: Portless | None) -> dict[str, Hop]:
    """Start the backend and the references in front of it; the hops to measure."""
    port = free_port()
    if name == "node":
        script = tmp / "backend.js"
        script.write_text(NODE_BACKEND)
        stack.enter_context(process(["node", str(script), str(port)], port))
    else:
        stack.enter_context(process([sys.executable, __file__, "--serve-asyncio",
                                     str(port)], port))
    host = repo.route(f"bench-{name}", port)
    hops = {"direct": Hop(port, host), "branchyard": Hop(proxy_port, host)}
    if shutil.which("nginx"):
        conf_dir = tmp / f"nginx-{name}"
        conf_dir.mkdir()
        nginx_port = free_port()
        (conf_dir / "nginx.conf").write_text(
            NGINX_CONF.format(tmp=conf_dir, backend=port, port=nginx_port))
        stack.enter_context(process(["nginx", "-c", str(conf_dir / "nginx.conf"),
                                     "-p", str(conf_dir)], nginx_port))
        hops["nginx"] = Hop(nginx_port, host)
    if portless is not None:
        hops["portless"] = Hop(portless.port, portless.route(f"bench-{name}", port))
    return {k: Hop(h.port, h.host, response_size(h)) for k, h in hops.items()}


def _cpu(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def measure(hops: dict[str, Hop], proxy_pid: int, sizes: Sizes) -> dict[str, dict[str, float]]:
    """Alternate the hops round by round (the load drifts); the median of each figure."""
    for hop in hops.values():
        asyncio.run(keep_alive(hop, 500, 8))  # warm up
    rounds: dict[str, dict[str, list[float]]] = {name: {} for name in hops}
    for _ in range(sizes.rounds):
        for name, hop in hops.items():
            got = rounds[name]
            for conns in sizes.conns:
                cpu = _cpu(proxy_pid)
                rps, reconnects = asyncio.run(keep_alive(hop, sizes.requests, conns))
                got.setdefault(f"rps{conns}", []).append(rps)
                got.setdefault("reconnects", []).append(reconnects)
                if name == "branchyard":
                    got.setdefault(f"cpu{conns}", []).append(
                        (_cpu(proxy_pid) - cpu) / sizes.requests * 1e6)
            lat = fresh_latencies(hop, sizes.fresh)
            got.setdefault("p50", []).append(statistics.median(lat))
            got.setdefault("p99", []).append(statistics.quantiles(lat, n=100)[98])
            got.setdefault("mbps", []).append(stream(hop, sizes.body))
    return {name: {k: max(v) if k == "reconnects" else statistics.median(v)
                   for k, v in got.items()} for name, got in rounds.items()}


def report(backend: str, f: dict[str, dict[str, float]], sizes: Sizes) -> None:
    d = f["direct"]
    names = [n for n in ("branchyard", "nginx", "portless") if n in f]
    print(f"\nbackend: {backend}" + (" (node:http, what dev servers answer with)"
                                   if backend == "node" else " (canned bytes)"))
    print(f"  {'':26s}{'direct':>10s}" + "".join(f"{n:>20s}" for n in names))
    for n in sizes.conns:
        key = f"rps{n}"
        label = f"keep-alive, {n} connection" + ("s" if n > 1 else "")
        print(f"  {label:26s}{d[key]:10.0f}" + "".join(
            f"{f[x][key]:11.0f} ({f[x][key] / d[key]:.2f}x)" for x in names) + "  req/s")
    print(f"  {'fresh p50, added':26s}{d['p50']:10.3f}" + "".join(
        f"{f[x]['p50']:11.3f} ({f[x]['p50'] - d['p50']:+.3f})" for x in names) + "  ms")
    print(f"  {'fresh p99':26s}{d['p99']:10.3f}" + "".join(
        f"{f[x]['p99']:20.3f}" for x in names) + "  ms")
    print(f"  {f'{sizes.body >> 20} MiB body':26s}{d['mbps']:10.0f}" + "".join(
        f"{f[x]['mbps']:11.0f} ({f[x]['mbps'] / d['mbps']:.2f}x)" for x in names) + "  MB/s")
    for x in names:
        if f[x]["reconnects"]:
            print(f"  {x} closed its client connections after each response: its "
                  "keep-alive figures include a new connection per request")
    cpu = ", ".join(f"{f['branchyard'][f'cpu{n}']:.0f} us at {n}" for n in sizes.conns)
    print(f"  branchyard proxy CPU per keep-alive request: {cpu}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smaller, faster run")
    parser.add_argument("--conns", type=int, nargs="+", default=[1, 6, 64],
                        help="keep-alive connection counts to measure (6: a browser's)")
    parser.add_argument("--rounds", type=int, default=5,
                        help="alternating rounds; each figure is their median")
    parser.add_argument("--backend", choices=("node", "asyncio"), action="append",
                        help="measure only this backend (default: both; node if found)")
    parser.add_argument("--portless", metavar="PATH",
                        help="the portless CLI (default: `portless` on PATH)")
    parser.add_argument("--serve-asyncio", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_asyncio:
        serve_asyncio(args.serve_asyncio)
        return
    sizes = Sizes(1000, 100, 100 << 20, tuple(args.conns), 3) if args.quick else \
        Sizes(5000, 500, 1 << 30, tuple(args.conns), args.rounds)
    backends = args.backend or (["node", "asyncio"] if shutil.which("node") else ["asyncio"])
    figures: dict[str, dict[str, dict[str, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="branchyard-bench-") as tmp_dir, \
            ExitStack() as stack:
        tmp = Path(tmp_dir)
        repo = BenchRepo(tmp)
        proxy_port = free_port()
        proxy = stack.enter_context(process(
            [sys.executable, "-m", "branchyard", "proxy", "run", "--port", str(proxy_port),
             "--no-https"], proxy_port, env=repo.env))
        cli = portless_cli(args.portless)
        portless = Portless(cli, tmp / "portless") if cli else None
        if portless is not None:
            (tmp / "portless").mkdir()
            stack.enter_context(process(portless.start(), portless.port, env=portless.env))
        for backend in backends:
            with ExitStack() as servers:
                hops = run_backend(backend, servers, tmp, repo, proxy_port, portless)
                figures[backend] = measure(hops, proxy.pid, sizes)
    loop = os.environ.get("BRANCHYARD_PROXY_LOOP", "auto")
    print(f"proxy event loop: {loop} (uvloop when installed, unless 'asyncio'); load "
          f"average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; medians of "
          f"{sizes.rounds} rounds of {sizes.requests} requests")
    print("targets: keep-alive >= 0.80x direct, added p50 <= 0.3 ms, body >= 0.90x direct")
    for backend, f in figures.items():
        report(backend, f, sizes)
    missing = [n for n, ok in (("nginx (apt-get install nginx-light)", shutil.which("nginx")),
                               ("portless (npm install -g portless)", portless))
               if not ok]
    if missing:
        print("\nnot measured, not installed: " + ", ".join(missing))
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
