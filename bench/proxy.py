"""Direct vs through the branchyard proxy, measured in the same run.

    python bench/proxy.py            # 5,000 keep-alive requests, 500 fresh
                                     # connections, a 1 GB streamed body
    python bench/proxy.py --quick    # a smaller run

The backend is a minimal asyncio server in its own process and the clients are
lean (asyncio protocols for keep-alive, blocking sockets with recv_into for the
rest), so the figures measure the proxy rather than the endpoints. Set
BRANCHYARD_PROXY_LOOP=asyncio to force the standard event loop when uvloop is
installed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

HOST = "bench.app.localhost"
SMALL = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"
CHUNK = 1 << 20


class BackendProtocol(asyncio.Protocol):
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


def _pump_bytes(src: socket.socket, dst: socket.socket) -> None:
    buf = memoryview(bytearray(CHUNK))
    try:
        while n := src.recv_into(buf):
            dst.sendall(buf[:n])
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)


def serve_relay(port: int, backend: int) -> None:
    """The least any proxy does: copy bytes both ways, one thread per direction.

    It measures what one more hop costs on this machine, whatever the proxy.
    """
    listener = socket.create_server(("127.0.0.1", port), backlog=1024)
    print("ready", flush=True)
    while True:
        client, _ = listener.accept()
        app = socket.create_connection(("127.0.0.1", backend))
        for sock in (client, app):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=_pump_bytes, args=(client, app), daemon=True).start()
        threading.Thread(target=_pump_bytes, args=(app, client), daemon=True).start()


def serve_backend(port: int) -> None:
    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(loop.create_server(BackendProtocol, "127.0.0.1", port))
    print("ready", flush=True)
    try:
        loop.run_forever()
    finally:
        server.close()


class KeepAliveClient(asyncio.Protocol):
    def __init__(self, request: bytes, count: int, done: asyncio.Future[None]) -> None:
        self.request, self.left, self.done = request, count, done
        self.expect = len(SMALL)
        self.got = 0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.got += len(data)
        while self.got >= self.expect:  # responses are all the same size
            self.got -= self.expect
            self.left -= 1
            if not self.left:
                self.transport.close()
                self.done.set_result(None)
                return
            self.transport.write(self.request)


async def keep_alive(port: int, total: int, conns: int) -> float:
    loop = asyncio.get_running_loop()
    request = f"GET / HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode()
    futures = []
    start = time.perf_counter()
    for _ in range(conns):
        done: asyncio.Future[None] = loop.create_future()
        await loop.create_connection(
            lambda d=done: KeepAliveClient(request, total // conns, d), "127.0.0.1", port)
        futures.append(done)
    await asyncio.gather(*futures)
    return total / (time.perf_counter() - start)


def fresh_latencies(port: int, count: int) -> list[float]:
    request = f"GET / HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode()
    out = []
    buf = bytearray(4096)
    for _ in range(count):
        start = time.perf_counter()
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.sendall(request)
            got = 0
            while got < len(SMALL):
                n = sock.recv_into(buf)
                if not n:
                    break
                got += n
        out.append((time.perf_counter() - start) * 1000)
    return out


def stream(port: int, size: int) -> float:
    buf = bytearray(CHUNK)
    view = memoryview(buf)
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(f"GET /stream?{size} HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode())
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


def setup_repo(root: Path, backend_port: int) -> dict[str, str]:
    env = {**os.environ, "BRANCHYARD_STATE_DIR": str(root / "state"),
           "GIT_CONFIG_NOSYSTEM": "1"}
    repo = root / "app"
    subprocess.run(["git", "init", "-q", str(repo)], check=True, env=env)
    os.environ["BRANCHYARD_STATE_DIR"] = env["BRANCHYARD_STATE_DIR"]
    from branchyard.identity import derive_identity
    from branchyard.ledger import Ledger, WorktreeRecord
    from branchyard.proxy.registry import register_repo

    ident = derive_identity("bench")
    with Ledger(repo / ".git").update() as state:
        state.worktrees[ident.slug] = WorktreeRecord(
            slug=ident.slug, subdomain=ident.subdomain, branch="bench", index=1,
            path=str(repo), state="ready", ports={"PORT": backend_port})
    register_repo(repo / ".git")
    return env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smaller, faster run")
    parser.add_argument("--conns", type=int, nargs="+", default=[1, 6, 64],
                        help="keep-alive connection counts to measure (6: a browser's)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="alternating direct/proxy rounds; the best of each is shown")
    parser.add_argument("--serve-backend", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--serve-relay", type=int, nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_backend:
        serve_backend(args.serve_backend)
        return
    if args.serve_relay:
        serve_relay(*args.serve_relay)
        return
    sizes = Sizes(1000, 100, 100 << 20, tuple(args.conns)) if args.quick else \
        Sizes(5000, 500, 1 << 30, tuple(args.conns))
    with tempfile.TemporaryDirectory(prefix="branchyard-bench-") as tmp:
        backend_port, proxy_port, relay_port = free_port(), free_port(), free_port()
        env = setup_repo(Path(tmp), backend_port)
        procs = [subprocess.Popen([sys.executable, __file__, "--serve-backend",
                                   str(backend_port)], stdout=subprocess.DEVNULL),
                 subprocess.Popen([sys.executable, __file__, "--serve-relay",
                                   str(relay_port), str(backend_port)],
                                  stdout=subprocess.DEVNULL),
                 subprocess.Popen([sys.executable, "-m", "branchyard", "proxy", "run",
                                   "--port", str(proxy_port), "--no-https"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
        try:
            for port in (backend_port, proxy_port, relay_port):
                wait_port(port)
            ports = {"direct": backend_port, "relay": relay_port, "proxy": proxy_port}
            figures = run_all(ports, procs[2].pid, sizes, args.rounds)
            report(figures, sizes)
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait(10)


@dataclass(frozen=True)
class Sizes:
    requests: int
    fresh: int
    body: int
    conns: tuple[int, ...]


def _cpu(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def run_all(ports: dict[str, int], proxy_pid: int, sizes: Sizes,
            rounds: int) -> dict[str, dict[str, float]]:
    """Alternate direct, relay and proxy rounds (the load drifts); keep the best of each."""
    asyncio.run(keep_alive(ports["proxy"], min(sizes.requests, 500), 8))  # warm up
    best: dict[str, dict[str, float]] = {name: {} for name in ports}
    for _ in range(rounds):
        for name, port in ports.items():
            got: dict[str, float] = {}
            for conns in sizes.conns:
                cpu = _cpu(proxy_pid)
                got[f"rps{conns}"] = asyncio.run(keep_alive(port, sizes.requests, conns))
                got[f"cpu{conns}"] = (_cpu(proxy_pid) - cpu) / sizes.requests * 1e6
            lat = fresh_latencies(port, sizes.fresh)
            got.update(p50=statistics.median(lat), p99=statistics.quantiles(lat, n=100)[98],
                       mbps=stream(port, sizes.body))
            _keep_best(best[name], got)
    return best


def _keep_best(best: dict[str, float], got: dict[str, float]) -> None:
    for key, value in got.items():
        higher_is_better = key.startswith(("rps", "mbps"))
        if key not in best or (value > best[key]) == higher_is_better:
            best[key] = value


def report(f: dict[str, dict[str, float]], sizes: Sizes) -> None:
    d, r, p = f["direct"], f["relay"], f["proxy"]
    loop = os.environ.get("BRANCHYARD_PROXY_LOOP", "auto")
    print(f"proxy event loop: {loop} (uvloop when installed, unless 'asyncio'); "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print("relay = a minimal byte-copying relay (one thread per direction): what one "
          "more hop costs on this machine, whatever the proxy")
    print(f"keep-alive, {sizes.requests} requests (target: proxy/direct >= 0.80x):")
    for n in sizes.conns:
        key = f"rps{n}"
        print(f"  {n:3d} conns: direct {d[key]:7.0f}  relay {r[key]:7.0f} "
              f"({r[key] / d[key]:.2f}x)  proxy {p[key]:7.0f} req/s ({p[key] / d[key]:.2f}x)"
              f"   proxy CPU {p[f'cpu{n}']:.0f} us/request")
    print(f"fresh connections, {sizes.fresh} sequential (target: added p50 <= 0.3 ms):")
    for name, x in (("direct", d), ("relay", r), ("proxy", p)):
        print(f"  {name:6s} p50 {x['p50']:.3f} ms  p99 {x['p99']:.3f} ms"
              + (f"  added p50 {x['p50'] - d['p50']:.3f} ms" if x is not d else ""))
    print(f"streamed body, {sizes.body >> 20} MiB (target: proxy/direct >= 0.90x):")
    print(f"  direct {d['mbps']:6.0f} MB/s  relay {r['mbps']:6.0f} MB/s "
          f"({r['mbps'] / d['mbps']:.2f}x)  proxy {p['mbps']:6.0f} MB/s "
          f"({p['mbps'] / d['mbps']:.2f}x)")
    print(json.dumps(f))


if __name__ == "__main__":
    main()
