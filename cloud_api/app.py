"""Flask application factory of the cloud API."""

from __future__ import annotations

from typing import Any

from flask import Flask, Response
from sqlalchemy.engine import Engine
from werkzeug.middleware.proxy_fix import ProxyFix

from cangyun import apidocs
from cangyun.httpapi import json_response, register_error_handlers
from cangyun.settings import SettingsError
from cloud_api import api, console
from cloud_api.billing import api as billing_api
from cloud_api.billing.payments import WechatPayConfig
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
    hops = settings.cloud.trusted_proxies
    if hops > 0:
        # Only the last ``hops`` entries were written by proxies we run; anything before them
        # came from the client and is not believed. X-Forwarded-Host is left alone: the
        # proxy passes Host itself (deploy/nginx.conf).
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=0)  # type: ignore[method-assign]
    try:
        # Read at start-up so a wrong key or a missing file stops the cloud here, with the
        # setting named, rather than failing the first notification with a 500.
        app.extensions["cangyun.wechatpay"] = WechatPayConfig.from_settings(settings.payment)
    except (OSError, ValueError) as exc:
        raise SettingsError(f"[payment] the WeChat Pay settings do not work: {exc}") from exc
    register_error_handlers(app)
    app.register_blueprint(api.bp)
    app.register_blueprint(billing_api.gateways)  # payment notifications: no bearer
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
