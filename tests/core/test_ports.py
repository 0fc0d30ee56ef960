from __future__ import annotations

import socket

import pytest

from branchyard import ports
from branchyard.config import PortsConfig
from branchyard.errors import PortError

# below the kernel's ephemeral range (32768+), so clients' sockets never crowd it
CFG = PortsConfig(names=("PORT", "API_PORT"), range=(22000, 22999), block=10)


def test_same_owner_gets_the_same_ports_back() -> None:
    first = ports.lease_ports("/repo/.git#a", CFG.names, CFG)
    assert list(first) == ["PORT", "API_PORT"]
    assert first["API_PORT"] == first["PORT"] + 1
    assert ports.lease_ports("/repo/.git#a", CFG.names, CFG) == first
    ports.release_ports("/repo/.git#a")
    assert ports.lease_ports("/repo/.git#a", CFG.names, CFG) == first  # derived, stable


def test_owners_never_share_a_port() -> None:
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
    base = next(b for b in range(46000, 47000, 10) if ports.is_free(b) and ports.is_free(b + 1))
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
