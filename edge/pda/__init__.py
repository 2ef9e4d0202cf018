"""The PDA web app the edge box serves to handheld terminals on the warehouse LAN.

One small page (``/pda/``) of plain HTML, CSS and JavaScript shipped inside the package:
nothing is fetched from the internet, so it works wherever the box does. The page talks to
the edge's own JSON API (``/api/v1``) with the operator's session cookie; see docs/pda.md.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from flask import Blueprint, Response, current_app, redirect, render_template, request

from cangyun.box_settings import EdgeSettings
from cangyun.httpapi import ApiError

STATIC = Path(__file__).parent / "static"

bp = Blueprint(
    "pda",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/pda/static",
)


def settings() -> EdgeSettings:
    return current_app.extensions["cangyun.edge_settings"]


@cache
def asset_version() -> str:
    """Changes whenever a static file does, so a PDA never runs yesterday's script."""
    digest = hashlib.sha256()
    for path in sorted(STATIC.rglob("*")):
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


@bp.get("/")
def root() -> Response:
    return redirect("/pda/", code=302)  # type: ignore[return-value]


@bp.get("/favicon.ico")
def favicon() -> Response:
    return Response(status=204)  # browsers ask for it on every load; nothing to show


@bp.get("/pda/")
def index() -> Response:
    edge = settings().edge
    https_url = None
    if edge.https_port and not request.is_secure:
        https_url = f"https://{request.host.split(':')[0]}:{edge.https_port}/pda/"
    html = render_template(
        "pda/index.html",
        version=asset_version(),
        device=settings().device.device,
        https_url=https_url,
    )
    response = Response(html, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob: mediastream:;"
        " style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'"
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@bp.get("/pda/ca.crt")
def ca_certificate() -> Response:
    """The box's local CA in DER, the form Android's "install certificate" takes."""
    path = settings().edge.data_dir / "tls" / "ca.crt"
    if settings().edge.tls_cert_file or not path.exists():
        raise ApiError(404, "not_found", "this box uses a certificate it did not make itself")
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    response = Response(
        cert.public_bytes(serialization.Encoding.DER), mimetype="application/x-x509-ca-cert"
    )
    response.headers["Content-Disposition"] = 'attachment; filename="cangyun-edge-ca.crt"'
    return response
