"""Flask application factory of the cloud API."""

from __future__ import annotations

from typing import Any

from flask import Flask, Response
from sqlalchemy.engine import Engine

from cangyun import apidocs
from cangyun.httpapi import json_response, register_error_handlers
from cloud_api import api, console
from cloud_api.platform.db import make_engine
from cloud_api.platform.openapi import spec
from cloud_api.settings import CloudSettings


def create_app(
    settings: CloudSettings,
    test_config: dict[str, Any] | None = None,
    engine: Engine | None = None,
) -> Flask:
    app = Flask(__name__, static_url_path="/static")
    app.config.from_mapping(MAX_CONTENT_LENGTH=8 * 1024 * 1024)
    if test_config:
        app.config.update(test_config)
    app.extensions["cangyun.settings"] = settings
    app.extensions["cangyun.engine"] = engine or make_engine(settings.database_url)
    register_error_handlers(app)
    app.register_blueprint(api.bp)
    console.register(app)
    apidocs.register(app, spec, "/api/v1/openapi.json")

    @app.context_processor
    def _nav() -> dict[str, Any]:
        # Console pages other modules add (customers, warehouses) show up in the menu.
        return {"nav": {rule.endpoint for rule in app.url_map.iter_rules()}}

    @app.get("/healthz")
    def healthz() -> Response:
        return json_response({"ok": True})

    return app
