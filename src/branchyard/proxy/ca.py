"""The local HTTPS certificate authority: made once, limited to the proxy's names,
rotated on request, and the steps that make a machine trust it.

The CA carries X.509 name constraints: it can vouch only for names under the
proxy's TLD (``localhost`` by default) and for loopback addresses, so a copy of
its key cannot be used to impersonate any other site to a browser that trusts it.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from branchyard.core import statefile
from branchyard.core.errors import ProxyError

CA_NAME = "branchyard local development CA"  # also the browser store's nickname
CA_DAYS = 825  # about 27 months; `branchyard proxy trust --rotate` makes a new one
LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))


@dataclass(frozen=True)
class CaInfo:
    """What the CA at ``cert`` vouches for, and until when."""

    cert: Path
    key: Path
    not_after: datetime.datetime
    permitted: tuple[str, ...]  # DNS subtrees and networks; () = unconstrained (old CA)


def ca_paths(tls_dir: Path) -> tuple[Path, Path]:
    return tls_dir / "ca.pem", tls_dir / "ca-key.pem"


def ensure_ca(tls_dir: Path, tlds: tuple[str, ...] = ("localhost",)) -> tuple[Path, Path]:
    """The CA certificate and key, made once (key readable by this user only)."""
    cert_path, key_path = ca_paths(tls_dir)
    if cert_path.is_file() and key_path.is_file():
        info = ca_info(tls_dir)
        if info.not_after <= datetime.datetime.now(datetime.UTC):
            raise ProxyError(f"the local HTTPS CA {cert_path} expired on "
                             f"{info.not_after:%Y-%m-%d}",
                             hint="run `branchyard proxy trust --rotate` and trust the "
                                  "new CA")
        return cert_path, key_path
    return make_ca(tls_dir, tlds)


def make_ca(tls_dir: Path, tlds: tuple[str, ...] = ("localhost",)) -> tuple[Path, Path]:
    """A new CA for names under ``tlds`` and loopback addresses, replacing any other."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME,
                                         f"{CA_NAME} {now:%Y-%m-%d %H:%M}"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "branchyard")])
    permitted: list[x509.GeneralName] = [x509.DNSName(t.strip(".").lower()) for t in tlds]
    permitted += [x509.IPAddress(net) for net in LOOPBACK]
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.NameConstraints(permitted_subtrees=permitted,
                                                excluded_subtrees=None), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = ca_paths(statefile.private_dir(tls_dir))
    write_private(key_path, key_pem(key))
    write_private(cert_path, cert_pem(cert))
    return cert_path, key_path


def ca_info(tls_dir: Path) -> CaInfo:
    from cryptography import x509

    cert_path, key_path = ca_paths(tls_dir)
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    try:
        ext = cert.extensions.get_extension_for_class(x509.NameConstraints).value
        permitted = tuple(str(n.value) for n in ext.permitted_subtrees or ())
    except x509.ExtensionNotFound:
        permitted = ()
    return CaInfo(cert_path, key_path, cert.not_valid_after_utc, permitted)


def trust_steps(ca_cert: Path) -> list[str]:
    """Commands that make this machine and its browsers trust the local CA."""
    nss = Path.home() / ".pki" / "nssdb"
    return [
        f"# Chromium/Chrome and Firefox on Linux (per user, no sudo; needs libnss3-tools):\n"
        f"mkdir -p {nss} && certutil -d sql:{nss} -A -t C,, -n '{CA_NAME}' -i {ca_cert}",
        f"# System-wide on Debian/Ubuntu (curl, Node with --use-openssl-ca, Python):\n"
        f"sudo cp {ca_cert} /usr/local/share/ca-certificates/branchyard-ca.crt && "
        "sudo update-ca-certificates",
        f"# macOS:\nsudo security add-trusted-cert -d -r trustRoot "
        f"-k /Library/Keychains/System.keychain {ca_cert}",
        f"# Node (any OS): export NODE_EXTRA_CA_CERTS={ca_cert}",
    ]


def untrust_steps() -> list[str]:
    """Commands that remove a replaced CA from where `trust_steps` put it."""
    nss = Path.home() / ".pki" / "nssdb"
    return [
        f"# Chromium/Chrome and Firefox on Linux:\ncertutil -d sql:{nss} -D -n '{CA_NAME}'",
        "# System-wide on Debian/Ubuntu:\nsudo rm -f /usr/local/share/ca-certificates/"
        "branchyard-ca.crt && sudo update-ca-certificates --fresh",
        f"# macOS:\nsudo security delete-certificate -c '{CA_NAME}' "
        "/Library/Keychains/System.keychain",
    ]


def install_user_trust(ca_cert: Path) -> Path:
    """Trust the CA in this user's NSS database (Chromium and Firefox on Linux; no
    sudo); the database path. Idempotent: the entry is replaced."""
    import shutil

    from branchyard.system.external import run

    certutil = shutil.which("certutil")
    if certutil is None:
        raise ProxyError("certutil is not installed, so the browser trust store cannot be "
                         "changed", hint="install it (Debian/Ubuntu: apt-get install "
                                         "libnss3-tools) or follow `branchyard proxy trust`")
    nss = Path.home() / ".pki" / "nssdb"
    if not (nss / "cert9.db").exists():
        nss.mkdir(parents=True, exist_ok=True)
        run([certutil, "-N", "-d", f"sql:{nss}", "--empty-password"], timeout=30)
    run([certutil, "-D", "-d", f"sql:{nss}", "-n", CA_NAME], timeout=30, check=False)
    run([certutil, "-A", "-d", f"sql:{nss}", "-t", "C,,", "-n", CA_NAME, "-i",
         str(ca_cert)], timeout=30)
    return nss


def write_private(path: Path, data: bytes) -> None:
    """Write a PEM readable by this user only, replacing ``path`` at once."""
    statefile.write_text(path, data.decode("ascii"))


def key_pem(key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    pem: bytes = key.private_bytes(serialization.Encoding.PEM,
                                   serialization.PrivateFormat.PKCS8,
                                   serialization.NoEncryption())
    return pem


def cert_pem(cert: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    pem: bytes = cert.public_bytes(serialization.Encoding.PEM)
    return pem
