"""The edge's own HTTPS certificate: a small local CA and a server certificate it signs.

Browsers only give a page the camera in a secure context, and a warehouse LAN has no public
name to get a certificate for. So on first start the box makes a CA of its own (10 years)
and a server certificate for every name and address it can be reached by. A PDA trusts the
CA once (docs/pda.md, downloaded from ``/pda/ca.crt``); when the box gets a new address the
server certificate is re-issued from the same CA and the PDAs need nothing new.

Files live in ``<data_dir>/tls/``: ``ca.crt``, ``ca.key``, ``server.crt``, ``server.key``.
Keys are written with mode 0600.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

log = logging.getLogger(__name__)

CA_DAYS = 3650
# Browsers cap server certificates from public CAs at 398 days; staying under it keeps the
# certificate acceptable even to a browser that applies the cap to private CAs too.
SERVER_DAYS = 397
RENEW_BEFORE_DAYS = 30
ORGANISATION = "cangyun edge"


@dataclass(frozen=True)
class TlsFiles:
    ca_cert: Path
    cert: Path
    key: Path


def local_names() -> tuple[list[str], list[str]]:
    """(DNS names, IP addresses) this box answers to, best effort and without the network."""
    names = {"localhost"}
    addresses = {"127.0.0.1", "::1"}
    hostname = socket.gethostname()
    if hostname:
        names.add(hostname)
        fqdn = socket.getfqdn()
        if fqdn and "." in fqdn:
            names.add(fqdn)
        try:
            for info in socket.getaddrinfo(hostname, None):
                addresses.add(str(info[4][0]).split("%")[0])
        except OSError:
            pass
    # The address the default route leaves by: the one PDAs on the LAN use. A UDP
    # "connect" sends nothing.
    for target in ("10.255.255.255", "192.168.255.255"):
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
                probe.connect((target, 1))
                addresses.add(probe.getsockname()[0])
        except OSError:
            pass
    return sorted(names), sorted(addresses)


def ensure_certificate(
    data_dir: Path,
    *,
    names: list[str] | None = None,
    addresses: list[str] | None = None,
    now: dt.datetime | None = None,
) -> TlsFiles:
    """Make the CA and server certificate when missing, expiring, or short of an address."""
    if names is None or addresses is None:
        found_names, found_addresses = local_names()
        names = found_names if names is None else names
        addresses = found_addresses if addresses is None else addresses
    now = now or dt.datetime.now(dt.UTC)
    folder = Path(data_dir) / "tls"
    folder.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(folder / "ca.crt", folder / "server.crt", folder / "server.key")
    ca_key_path = folder / "ca.key"
    if not (files.ca_cert.exists() and ca_key_path.exists()):
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_cert = _ca_certificate(ca_key, now)
        _write_key(ca_key_path, ca_key)
        files.ca_cert.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
        log.info("made the edge's local CA in %s", folder)
    ca_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
    ca_cert = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
    if _server_is_current(files, ca_cert, names, addresses, now):
        return files
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _server_certificate(key, ca_key, ca_cert, names, addresses, now)
    _write_key(files.key, key)
    # The chain (server, then CA) so clients that trust only the CA can build the path.
    files.cert.write_bytes(
        cert.public_bytes(serialization.Encoding.PEM)
        + ca_cert.public_bytes(serialization.Encoding.PEM)
    )
    log.info("issued the HTTPS certificate for %s", ", ".join([*names, *addresses]))
    return files


def _server_is_current(
    files: TlsFiles,
    ca_cert: x509.Certificate,
    names: list[str],
    addresses: list[str],
    now: dt.datetime,
) -> bool:
    if not (files.cert.exists() and files.key.exists()):
        return False
    try:
        cert = x509.load_pem_x509_certificate(files.cert.read_bytes())
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, x509.ExtensionNotFound):
        return False
    if cert.issuer != ca_cert.subject:
        return False
    if cert.not_valid_after_utc - now < dt.timedelta(days=RENEW_BEFORE_DAYS):
        return False
    covered_names = set(san.get_values_for_type(x509.DNSName))
    covered_ips = {str(ip) for ip in san.get_values_for_type(x509.IPAddress)}
    return set(names) <= covered_names and set(addresses) <= covered_ips


def _ca_certificate(key: ec.EllipticCurvePrivateKey, now: dt.datetime) -> x509.Certificate:
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANISATION),
            x509.NameAttribute(NameOID.COMMON_NAME, f"cangyun edge CA {socket.gethostname()}"),
        ]
    )
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


def _server_certificate(
    key: ec.EllipticCurvePrivateKey,
    ca_key: object,
    ca_cert: x509.Certificate,
    names: list[str],
    addresses: list[str],
    now: dt.datetime,
) -> x509.Certificate:
    alt_names: list[x509.GeneralName] = [x509.DNSName(n) for n in names]
    for address in addresses:
        try:
            alt_names.append(x509.IPAddress(ipaddress.ip_address(address)))
        except ValueError:
            continue
    ca_public = ca_cert.public_key()
    return (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANISATION),
                    x509.NameAttribute(NameOID.COMMON_NAME, names[0] if names else "localhost"),
                ]
            )
        )
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=SERVER_DAYS))
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_public),  # type: ignore[arg-type]
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    )


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    data = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
