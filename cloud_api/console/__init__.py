"""The admin console: server-rendered pages, Chinese by default, English by a switch.

Pages call the same store classes as the JSON API, scoped to the logged-in tenant, and check
the same permissions. The session is an HttpOnly, SameSite=Strict cookie holding a session
token; every form carries a CSRF token derived from it. The JSON API never accepts the
cookie, only bearer tokens.

One blueprint, ``bp``, with its pages in a module per area: ``session`` (the cookie, CSRF,
language, permissions, error page), ``signin``, ``overview`` (dashboard, devices, audit),
``people`` (users, security policy), ``customers``, ``warehouses``, ``grants`` (a tenant's 代运营
grants to platform staff), ``custom_services`` (定制服务: the tenant's requests and staff's
quotes) and ``platform`` (平台运营: the staff's own pages, for platform staff signed in as
themselves only). Every page registers on ``bp``, so endpoints stay
``console.<function>``.
"""

from __future__ import annotations

from flask import Blueprint, Flask, Response, redirect, url_for

# The templates stay in cloud_api/templates/console/, beside the package.
bp = Blueprint("console", __name__, url_prefix="/console", template_folder="../templates")

# Page sizes, read at request time as console.NAME so a test can shrink them here.
CUSTOMERS_PAGE = 50
NOTES_SHOWN = 20
TIMELINE_PAGE = 50
LOCATIONS_PAGE = 100
TENANTS_PAGE = 25  # 平台运营: tenants, each with its packages
PLATFORM_ORDERS_PAGE = 50
PLATFORM_AUDIT_PAGE = 50
CUSTOM_SERVICES_PAGE = 20  # 定制服务 requests, each with its history


def register(app: Flask) -> None:
    app.register_blueprint(bp)

    @app.get("/")
    def _root() -> Response:
        return redirect(url_for("console.dashboard"))


# The page modules register their routes on bp, so they are imported once it exists.
from cloud_api.console import (  # noqa: E402, F401
    custom_services,
    customers,
    grants,
    overview,
    people,
    platform,
    signin,
    warehouses,
)
from cloud_api.console.session import ERROR_TEXTS  # noqa: E402

__all__ = [
    "CUSTOMERS_PAGE",
    "CUSTOM_SERVICES_PAGE",
    "ERROR_TEXTS",
    "LOCATIONS_PAGE",
    "NOTES_SHOWN",
    "PLATFORM_AUDIT_PAGE",
    "PLATFORM_ORDERS_PAGE",
    "TENANTS_PAGE",
    "TIMELINE_PAGE",
    "bp",
    "register",
]
