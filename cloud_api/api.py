"""The cloud HTTP API under /api/v1: one blueprint that authenticates every request and
mounts each feature's routes."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response

from cangyun.apispec import operation
from cangyun.httpapi import json_response
from cloud_api.accounts import api as accounts
from cloud_api.billing import api as billing
from cloud_api.crm import api as crm
from cloud_api.custom_services import api as custom_services
from cloud_api.expected import api as expected
from cloud_api.integrations import api as integrations
from cloud_api.ledger import api as ledger
from cloud_api.messaging import api as messaging
from cloud_api.operations import api as operations
from cloud_api.platform.auth import identify_caller
from cloud_api.platform.openapi import spec
from cloud_api.sites import api as sites

FEATURES = (
    ledger,
    accounts,
    crm,
    sites,
    expected,
    integrations,
    billing,
    custom_services,
    operations,
    messaging,
)

bp = Blueprint("api", __name__, url_prefix="/api/v1")
bp.before_request(identify_caller)


@bp.get("/openapi.json")
@operation("This document (OpenAPI 3.1)", responses={200: dict[str, Any]}, public=True)
def openapi() -> Response:
    return json_response(spec())


for feature in FEATURES:
    bp.register_blueprint(feature.bp)
