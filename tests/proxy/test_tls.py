"""HTTPS with the local CA: per-name certificates only for routed names, a CA
limited to the proxy's TLD, ALPN http/1.1, rotation and trust steps."""

from __future__ import annotations

import contextlib
import datetime
import json
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from proxykit import App, ProxyThread, add_worktree, read_response

from branchyard.cli.main import main
from branchyard.proxy.ca import ca_info, ensure_ca, trust_steps
from branchyard.proxy.daemon import proxy_dir
from branchyard.proxy.tls import host_context


@pytest.fixture
def https_proxy(tmp_path: Path) -> Iterator[ProxyThread]:
    server = ProxyThread(tmp_path / "tls")
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
        tmp_path: Path, common_dir: Path, https_proxy: ProxyThread) -> None:
    add_worktree(common_dir, "feat/a", {"PORT": 1})
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


@pytest.mark.parametrize("name", ["example.com", "localhost", "other.localhost",
                                  "feat-a.app.localhost.example.com", "xapp.localhost"])
def test_no_certificate_for_a_name_the_proxy_does_not_route(
        name: str, tmp_path: Path, common_dir: Path, https_proxy: ProxyThread) -> None:
    add_worktree(common_dir, "feat/a", {"PORT": 1})
    # the handshake is refused (asyncio drops the connection without sending the alert)
    with pytest.raises(ssl.SSLError, match="UNRECOGNIZED_NAME|EOF"):
        _get(https_proxy.port, tmp_path / "tls" / "ca.pem", name)
    # the project's own names, made up or not, get one (and the proxy's 404 or 502)
    for routed in ("app.localhost", "nope.app.localhost"):
        assert _get(https_proxy.port, tmp_path / "tls" / "ca.pem", routed)[1] in (404, 502)


def test_a_client_sending_no_name_gets_the_loopback_certificate(
        tmp_path: Path, https_proxy: ProxyThread) -> None:
    ctx = ssl.create_default_context(cafile=str(tmp_path / "tls" / "ca.pem"))
    with socket.create_connection(("127.0.0.1", https_proxy.port), timeout=10) as raw, \
            ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:  # no SNI for an IP
        tls.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        assert read_response(tls)[0] == 404  # type: ignore[arg-type]


def test_the_ca_is_limited_to_the_tld_and_loopback(tmp_path: Path) -> None:
    cert, _ = ensure_ca(tmp_path / "tls")
    assert ca_info(tmp_path / "tls").permitted == ("localhost", "127.0.0.0/8", "::1/128")
    text = subprocess.run(["openssl", "x509", "-in", str(cert), "-noout", "-text"],
                          capture_output=True, text=True, check=True).stdout
    constraints = text.split("X509v3 Name Constraints: critical", 1)[1]
    assert "Permitted:" in constraints
    assert "DNS:localhost" in constraints
    assert "IP:127.0.0.0/255.0.0.0" in constraints
    assert "Certificate Sign, CRL Sign" in text
    # even a certificate the CA's key signs for another name is refused by clients
    server = _serve_once(host_context(tmp_path / "tls", ["example.com"]))
    ctx = ssl.create_default_context(cafile=str(cert))
    with socket.create_connection(("127.0.0.1", server), timeout=10) as raw, \
            pytest.raises(ssl.SSLCertVerificationError, match="permitted subtree"):
        ctx.wrap_socket(raw, server_hostname="example.com")


def _serve_once(ctx: ssl.SSLContext) -> int:
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        with listener:
            conn, _ = listener.accept()
            with conn, contextlib.suppress(OSError):
                ctx.wrap_socket(conn, server_side=True).close()

    threading.Thread(target=serve, daemon=True).start()
    return int(listener.getsockname()[1])


def test_trust_rotate_makes_a_new_ca_and_says_what_to_trust_again(
        common_dir: Path, apps: list[App], capsys: pytest.CaptureFixture[str]) -> None:
    tls_dir = proxy_dir() / "tls"
    assert main(["proxy", "trust", "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    old_pem = Path(first["ca_certificate"]).read_bytes()
    assert (first["rotated"], first["permitted"]) == (False, ["localhost", "127.0.0.0/8",
                                                             "::1/128"])
    assert main(["proxy", "trust", "--rotate"]) == 0
    text = capsys.readouterr().out
    assert "made a new CA" in text
    assert "certutil -d sql:" in text and "-D -n 'branchyard local development CA'" in text
    assert "update-ca-certificates --fresh" in text
    new_pem = (tls_dir / "ca.pem").read_bytes()
    assert new_pem != old_pem
    assert (tls_dir / "ca-key.pem").stat().st_mode & 0o777 == 0o600
    assert tls_dir.stat().st_mode & 0o077 == 0
    app = App("a")
    apps.append(app)
    add_worktree(common_dir, "feat/a", {"PORT": app.port})
    proxy = ProxyThread(tls_dir)
    try:
        old = tls_dir.parent / "old-ca.pem"
        old.write_bytes(old_pem)
        with pytest.raises(ssl.SSLCertVerificationError):
            _get(proxy.port, old, "feat-a.app.localhost")
        assert _get(proxy.port, tls_dir / "ca.pem", "feat-a.app.localhost")[1] == 200
    finally:
        proxy.stop()


def test_an_expired_ca_is_an_error_that_says_to_rotate(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from branchyard.core.errors import ProxyError
    from branchyard.proxy import ca

    ensure_ca(tmp_path / "tls")

    class _Later(datetime.datetime):  # the clock, CA_DAYS and a day later
        @classmethod
        def now(cls, tz: datetime.tzinfo | None = None) -> _Later:  # type: ignore[override]
            return cls.fromtimestamp(time.time() + (ca.CA_DAYS + 1) * 86400, tz)

    monkeypatch.setattr(ca.datetime, "datetime", _Later)
    with pytest.raises(ProxyError, match="expired") as err:
        ensure_ca(tmp_path / "tls")
    assert "proxy trust --rotate" in (err.value.hint or "")
