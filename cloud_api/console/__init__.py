"""The admin console: server-rendered pages, Chinese by default, English by a switch.

Pages call the same store classes as the JSON API, scoped to the logged-in tenant, and check
the same permissions. The session is an HttpOnly, SameSite=Strict cookie holding a session
token; every form carries a CSRF token derived from it. The JSON API never accepts the
cookie, only bearer tokens.

One blueprint, ``bp``, with its pages in a module per area: ``session`` (the cookie, CSRF,
language, permissions, error page), ``signin``, ``overview`` (dashboard, devices, audit),
``people`` (users, security policy), ``customers`` and ``warehouses``. Every page registers on
``bp``, so endpoints stay ``console.<function>``.
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


def register(app: Flask) -> None:
    app.register_blueprint(bp)

    @app.get("/")
    def _root() -> Response:
        return redirect(url_for("console.dashboard"))


# The page modules register their routes on bp, so they are imported once it exists.
from cloud_api.console import customers, overview, people, signin, warehouses  # noqa: E402, F401
from cloud_api.console.session import ERROR_TEXTS  # noqa: E402

__all__ = [
    "CUSTOMERS_PAGE",
    "ERROR_TEXTS",
    "LOCATIONS_PAGE",
    "NOTES_SHOWN",
    "TIMELINE_PAGE",
    "bp",
    "register",
]
