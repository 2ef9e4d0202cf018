"""Flask application factory of the edge box."""

from __future__ import annotations

from typing import Any

from flask import Flask, Response

from cangyun import apidocs
from cangyun.box_settings import EdgeSettings
from cangyun.httpapi import json_response, register_error_handlers
from edge import api, gates, pda
from edge.operators import LockoutPolicy, OperatorStore
from edge.store import EdgeStore

MAX_CONTENT_LENGTH = 32 * 1024 * 1024  # camera photos are the largest uploads


def create_app(settings: EdgeSettings, test_config: dict[str, Any] | None = None) -> Flask:
    app = Flask(__name__)
    app.config.from_mapping(MAX_CONTENT_LENGTH=MAX_CONTENT_LENGTH, JSON_AS_ASCII=False)
    if test_config:
        app.config.update(test_config)
    store = EdgeStore(
        settings.database_path,
        device=settings.device.device,
        max_backlog=settings.edge.max_backlog,
        min_free_disk_mb=settings.edge.min_free_disk_mb,
    )
    app.extensions["cangyun.edge_settings"] = settings
    app.extensions["cangyun.edge_store"] = store
    app.extensions["cangyun.operators"] = OperatorStore(
        settings.database_path,
        session_s=settings.pda.session_hours * 3600,
        policy=LockoutPolicy(settings.pda.lockout_failures, settings.pda.lockout_minutes * 60),
    )
    register_error_handlers(app)
    app.register_blueprint(api.bp)
    app.register_blueprint(pda.bp)  # the PDA web app: / and /pda/
    gates.init_app(app, settings, store)  # dock gate cameras: /api/v1/gates
    apidocs.register(app, api.spec, "/api/v1/openapi.json")

    @app.get("/healthz")
    def healthz() -> Response:
        return json_response({"ok": True, "device": settings.device.device, "epoch": store.epoch})

    return app
