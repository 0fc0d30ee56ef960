from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from branchyard.config.model import PortsConfig
from branchyard.core.errors import PortError
from branchyard.system import ports
from tests.conftest import quiet_port_range

OLD_FIXED_RANGE = range(42000, 43000, 10)  # what these tests once assumed mostly free
CFG = PortsConfig(names=("PORT", "API_PORT"), range=quiet_port_range(), block=10)


@pytest.fixture
def busy_old_range() -> Iterator[int]:
    """Listeners on the first port of every block of the range these tests once
    used, as a busy machine's connections left it (a lease there fails)."""
    socks: list[socket.socket] = []
    for port in OLD_FIXED_RANGE:
        sock = socket.socket()
        try:
            sock.bind(("127.0.0.1", port))
            sock.listen()
            socks.append(sock)
        except OSError:
            sock.close()  # already busy: just as good
    yield len(socks)
    for sock in socks:
        sock.close()


def test_same_owner_gets_the_same_ports_back() -> None:
    first = ports.lease_ports("/repo/.git#a", CFG.names, CFG)
    assert list(first) == ["PORT", "API_PORT"]
    assert first["API_PORT"] == first["PORT"] + 1
    assert ports.lease_ports("/repo/.git#a", CFG.names, CFG) == first
    ports.release_ports("/repo/.git#a")
    assert ports.lease_ports("/repo/.git#a", CFG.names, CFG) == first  # derived, stable


def test_owners_never_share_a_port(busy_old_range: int) -> None:
    seen: set[int] = set()
    for i in range(30):
        got = ports.lease_ports(f"/repo{i % 3}/.git#w{i}", CFG.names, CFG)
        assert not seen & set(got.values())
        seen |= set(got.values())
    assert {lease.port for lease in ports.all_leases()} == seen


def test_a_busy_port_is_skipped() -> None:
    preferred = ports.lease_ports("/r/.git#busy", CFG.names, CFG)
    ports.release_ports("/r/.git#busy")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", preferred["PORT"]))
        sock.listen()
        got = ports.lease_ports("/r/.git#busy", CFG.names, CFG)
    assert got["PORT"] != preferred["PORT"]
    assert ports.is_free(got["PORT"])


def test_conductor_port_pins_the_block(monkeypatch: pytest.MonkeyPatch) -> None:
    low, high = quiet_port_range()
    base = next(b for b in range(low, high, 10) if ports.is_free(b) and ports.is_free(b + 1))
    monkeypatch.setenv("CONDUCTOR_PORT", str(base))
    assert ports.conductor_base() == base
    got = ports.lease_ports("/r/.git#c", CFG.names, CFG, fixed_base=base)
    assert got == {"PORT": base, "API_PORT": base + 1}


def test_bad_conductor_port_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONDUCTOR_PORT", "abc")
    with pytest.raises(PortError, match="CONDUCTOR_PORT='abc' is not a port number"):
        ports.conductor_base()


def test_release_frees_only_the_owner() -> None:
    a = ports.lease_ports("/r/.git#a", CFG.names, CFG)
    b = ports.lease_ports("/r/.git#b", CFG.names, CFG)
    assert ports.release_ports("/r/.git#a") == sorted(a.values())
    assert {lease.port for lease in ports.all_leases()} == set(b.values())


def test_a_port_in_time_wait_is_free_as_a_dev_server_sees_it() -> None:
    """Dev servers (Node, Python's http.server) listen with SO_REUSEADDR, so a port
    whose only sockets are in TIME_WAIT is free; loopback traffic leaves thousands."""
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as dev servers do
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        client = socket.create_connection(("127.0.0.1", port))
        served, _ = listener.accept()
        served.close()  # the server side closes first: its socket waits in TIME_WAIT
        client.recv(1)
        client.close()
    assert ports.is_free(port)
    with socket.socket() as busy:
        busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        busy.bind(("127.0.0.1", port))
        busy.listen()
        assert not ports.is_free(port)


def test_a_lease_owner_key_reads_back_as_the_repository_and_slug(tmp_path: Path) -> None:
    """One builder and one reader per owner format, also for paths holding `#` or `|`."""
    from branchyard.db.redisdb import lease_owner, owner_parts

    common = tmp_path / "a#b|c" / ".git"
    assert ports.owner_parts(ports.owner_key(common, "feat_1")) == (str(common), "feat_1")
    assert owner_parts(lease_owner(common, "feat_1", "cache")) == (str(common), "feat_1", "cache")
