"""Local HTTPS: certificates minted per host name, only for names the proxy routes.

Browsers reject a ``*.localhost`` wildcard, and a wildcard covers one label
only (``api.feat.app.localhost`` is not under ``*.app.localhost``), so the
server mints a certificate for each name it is asked for (SNI), signed by the
local CA (``proxy/ca.py``). A name the proxy does not route — not
``<project>.<tld>`` or under it for a registered repository — gets no
certificate: the handshake is refused.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from branchyard.core.errors import ProxyError
from branchyard.proxy.ca import ca_info, cert_pem, ensure_ca, key_pem, write_private

if TYPE_CHECKING:
    from cryptography.x509 import GeneralName

MAX_CONTEXTS = 512
LEAF_DAYS = 397  # the longest lifetime browsers accept for a server certificate
LOOPBACK_NAMES = ("127.0.0.1", "::1")  # the certificate for clients that send no name
NameFilter = Callable[[str], bool]


def mint_certificate(tls_dir: Path, hosts: list[str]) -> tuple[bytes, bytes]:
    """(cert PEM + CA PEM chain, key PEM) for ``hosts``, signed by the local CA."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    ca_cert_path, ca_key_path = ensure_ca(tls_dir)
    ca_pem = ca_cert_path.read_bytes()
    ca_cert = x509.load_pem_x509_certificate(ca_pem)
    ca_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise ProxyError(f"{ca_key_path} is not the EC key branchyard made",
                         hint="run `branchyard proxy trust --rotate` to make a new CA")
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    until = min(now + datetime.timedelta(days=LEAF_DAYS), ca_cert.not_valid_after_utc)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME,
                                                        _common_name(hosts))]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(until)
            .add_extension(x509.SubjectAlternativeName([_general_name(h) for h in hosts]),
                           critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=False,
                crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_key.public_key()), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    return cert_pem(cert) + ca_pem, key_pem(key)


def host_context(tls_dir: Path, hosts: list[str]) -> ssl.SSLContext:
    """A server context for ``hosts`` offering HTTP/1.1 only (ALPN)."""
    cert, key = mint_certificate(tls_dir, hosts)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_alpn_protocols(["http/1.1"])
    # ssl loads certificates from files only: a private temp dir, removed at once
    with tempfile.TemporaryDirectory(prefix="branchyard-tls-") as tmp:
        cert_file, key_file = Path(tmp) / "cert.pem", Path(tmp) / "key.pem"
        write_private(cert_file, cert)
        write_private(key_file, key)
        ctx.load_cert_chain(cert_file, key_file)
    return ctx


def server_context(tls_dir: Path, routed: NameFilter) -> ssl.SSLContext:
    """The listening context: loopback addresses without SNI, and a certificate
    minted per SNI name that ``routed`` accepts and the CA may vouch for."""
    ensure_ca(tls_dir)
    permitted = tuple(p for p in ca_info(tls_dir).permitted if not _is_network(p))
    default = host_context(tls_dir, list(LOOPBACK_NAMES))
    by_host: dict[str, ssl.SSLContext] = {}

    def choose(sock: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> int | None:
        if not name:
            return None  # an address, not a name: the loopback certificate
        name = name.lower().rstrip(".")
        ctx = by_host.get(name)
        if ctx is None:
            if not (_valid_name(name) and _under(name, permitted) and routed(name)):
                return ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME
            if len(by_host) >= MAX_CONTEXTS:
                by_host.clear()
            ctx = by_host[name] = host_context(tls_dir, [name])
        sock.context = ctx
        return None

    default.sni_callback = choose
    return default


def _under(name: str, subtrees: tuple[str, ...]) -> bool:
    """Inside one of the CA's DNS name constraints (none: an old, unconstrained CA)."""
    return not subtrees or any(name == t or name.endswith("." + t) for t in subtrees)


def _general_name(host: str) -> GeneralName:
    from cryptography import x509

    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def _common_name(hosts: list[str]) -> str:
    # a CN that looks like a host name is checked against the CA's DNS constraints
    # when the certificate has no DNS name, so an address-only one gets a plain label
    return "branchyard loopback" if all(_is_address(h) for h in hosts) else hosts[0]


def _is_address(text: str) -> bool:
    return _parses(ipaddress.ip_address, text)


def _is_network(text: str) -> bool:
    return _parses(ipaddress.ip_network, text)


def _parses(parse: Callable[[str], object], text: str) -> bool:
    try:
        parse(text)
    except ValueError:
        return False
    return True


def _valid_name(name: str) -> bool:
    return len(name) <= 253 and all(c.isalnum() or c in "-." for c in name)
