"""The edge's own CA and HTTPS certificate, on real files."""

from __future__ import annotations

import datetime as dt
import ipaddress
import stat

from cryptography import x509

from edge.tls import SERVER_DAYS, ensure_certificate


def sans(path):
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return (
        cert,
        set(names.get_values_for_type(x509.DNSName)),
        {str(ip) for ip in names.get_values_for_type(x509.IPAddress)},
    )


def test_first_start_makes_a_ca_and_a_server_certificate_it_signed(tmp_path):
    files = ensure_certificate(tmp_path, names=["localhost", "edge1"], addresses=["127.0.0.1"])
    ca = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    cert, names, ips = sans(files.cert)
    assert names == {"localhost", "edge1"} and ips == {"127.0.0.1"}
    assert cert.issuer == ca.subject
    cert.verify_directly_issued_by(ca)
    assert cert.not_valid_after_utc - cert.not_valid_before_utc <= dt.timedelta(
        days=SERVER_DAYS + 1
    )
    for key in (files.key, tmp_path / "tls" / "ca.key"):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600


def test_a_restart_keeps_the_certificate_and_a_new_address_keeps_the_ca(tmp_path):
    first = ensure_certificate(tmp_path, names=["localhost"], addresses=["127.0.0.1"])
    cert_pem, ca_pem = first.cert.read_bytes(), first.ca_cert.read_bytes()
    ensure_certificate(tmp_path, names=["localhost"], addresses=["127.0.0.1"])
    assert first.cert.read_bytes() == cert_pem
    moved = ensure_certificate(tmp_path, names=["localhost"], addresses=["10.0.0.7"])
    assert moved.cert.read_bytes() != cert_pem and moved.ca_cert.read_bytes() == ca_pem
    _, _, ips = sans(moved.cert)
    assert ipaddress.ip_address("10.0.0.7") in {ipaddress.ip_address(i) for i in ips}


def test_a_certificate_near_its_end_is_renewed(tmp_path):
    now = dt.datetime.now(dt.UTC)
    old = ensure_certificate(tmp_path, names=["localhost"], addresses=[], now=now)
    pem = old.cert.read_bytes()
    later = now + dt.timedelta(days=SERVER_DAYS - 10)
    assert (
        ensure_certificate(tmp_path, names=["localhost"], addresses=[], now=later).cert.read_bytes()
        != pem
    )
