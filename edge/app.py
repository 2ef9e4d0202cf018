"""Flask application factory of the edge box."""

from __future__ import annotations

from typing import Any

from flask import Flask, Response

from cangyun import apidocs
from cangyun.box_settings import EdgeSettings
from cangyun.httpapi import error_response, json_response, register_error_handlers
from edge import api, gates, pda
from edge.operators import AccountLocked, LockoutPolicy, OperatorStore
from edge.store import EdgeStore, StorageFull

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
    register_edge_refusals(app)
    app.register_blueprint(api.bp)
    app.register_blueprint(pda.bp)  # the PDA web app: / and /pda/
    gates.init_app(app, settings, store)  # dock gate cameras: /api/v1/gates
    apidocs.register(app, api.spec, "/api/v1/openapi.json")

    @app.get("/healthz")
    def healthz() -> Response:
        return json_response({"ok": True, "device": settings.device.device, "epoch": store.epoch})

    return app


def register_edge_refusals(app: Flask) -> None:
    """The few refusals of the edge that the one table (``cangyun.httpapi.DOMAIN_STATUS``)
    does not answer as the edge documents them. Every other refusal is a ``cangyun.errors``
    kind and needs nothing here. App-wide, as the movement API and the gate API (accepting
    a held pallet) record movements alike."""

    @app.errorhandler(StorageFull)
    def _storage_full(exc: StorageFull) -> Response:
        # 507 Insufficient Storage, the edge's documented answer, is more precise than the
        # 503 of its kind (Unavailable), and only an edge box runs out of its disk budget.
        return error_response(507, exc.code, exc.message, exc.details)

    @app.errorhandler(AccountLocked)
    def _account_locked(exc: AccountLocked) -> Response:
        # The PDA documents 423 Locked for a locked operator account; the kind (Throttled)
        # would answer 429, as the cloud does for its own lockout.
        wait = exc.details.get("retry_after_s")
        headers = {"Retry-After": str(wait)} if wait is not None else {}
        return error_response(423, exc.code, exc.message, exc.details, headers)
