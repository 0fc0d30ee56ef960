"""HTTPS with the local CA: per-name certificates, ALPN http/1.1, trust steps."""

from __future__ import annotations

import json
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from proxykit import App, ProxyThread, add_worktree, read_response

from branchyard.proxy.tls import ensure_ca, server_context, trust_steps


@pytest.fixture
def https_proxy(tmp_path: Path) -> Iterator[ProxyThread]:
    server = ProxyThread(https=server_context(tmp_path / "tls"))
    yield server
    server.stop()


def _get(port: int, ca: Path, host: str) -> tuple[str | None, int, dict[str, str], bytes]:
    ctx = ssl.create_default_context(cafile=str(ca))
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
            ctx.wrap_socket(raw, server_hostname=host) as tls:
        tls.sendall(f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        alpn = tls.selected_alpn_protocol()
        status, headers, body = read_response(tls)  # type: ignore[arg-type]
    return alpn, status, headers, body


def test_https_verifies_against_the_local_ca_for_nested_names(
        tmp_path: Path, repo: Path, common_dir: Path, https_proxy: ProxyThread) -> None:
    web, api = App("web"), App("api")
    try:
        (repo / "branchyard.toml").write_text('[ports]\nnames = ["PORT", "API_PORT"]\n')
        add_worktree(common_dir, "feat/a", {"PORT": web.port, "API_PORT": api.port})
        ca = tmp_path / "tls" / "ca.pem"
        alpn, status, _, body = _get(https_proxy.port, ca, "feat-a.app.localhost")
        echo = json.loads(body)
        assert (alpn, status, echo["name"]) == ("http/1.1", 200, "web")
        assert echo["headers"]["x-forwarded-proto"] == "https"
        _, status, _, body = _get(https_proxy.port, ca, "api.feat-a.app.localhost")
        assert (status, json.loads(body)["name"]) == (200, "api")
    finally:
        web.stop()
        api.stop()


def test_a_certificate_from_another_ca_is_rejected(
        tmp_path: Path, https_proxy: ProxyThread) -> None:
    other_ca, _ = ensure_ca(tmp_path / "other")
    with pytest.raises(ssl.SSLCertVerificationError):
        _get(https_proxy.port, other_ca, "feat-a.app.localhost")


def test_ca_key_is_private_and_trust_steps_name_the_certificate(tmp_path: Path) -> None:
    cert, key = ensure_ca(tmp_path / "tls")
    assert key.stat().st_mode & 0o077 == 0
    assert ensure_ca(tmp_path / "tls") == (cert, key)  # made once
    steps = "\n".join(trust_steps(cert))
    assert f"-i {cert}" in steps
    assert "update-ca-certificates" in steps
    assert f"NODE_EXTRA_CA_CERTS={cert}" in steps


def test_large_download_over_https_keeps_flowing(
        tmp_path: Path, common_dir: Path, https_proxy: ProxyThread) -> None:
    app = App("a")
    try:
        add_worktree(common_dir, "feat/a", {"PORT": app.port})
        ctx = ssl.create_default_context(cafile=str(tmp_path / "tls" / "ca.pem"))
        with socket.create_connection(("127.0.0.1", https_proxy.port), timeout=10) as raw, \
                ctx.wrap_socket(raw, server_hostname="feat-a.app.localhost") as tls:
            for _ in range(2):  # and the connection stays usable afterwards
                tls.sendall(b"GET /big?n=%d HTTP/1.1\r\nHost: feat-a.app.localhost\r\n\r\n"
                            % (40 << 20))
                status, _, body = read_response(tls)  # type: ignore[arg-type]
                assert (status, len(body)) == (200, 40 << 20)
    finally:
        app.stop()
