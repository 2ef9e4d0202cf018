"""Every way a request can fail answers the one error body, on the cloud and on the edge.

Grouped by where the error comes from (after Datasette's ``test_error_shape.py``): the
HTTP layer (404/405/413/415 and the NUL guard), the body parser (bad JSON, not an object),
the declared models (missing, unknown and invalid fields), domain refusals mapped by the one
table in ``cangyun.httpapi``, authentication, and an unexpected exception.
"""

from __future__ import annotations

import pytest

from cangyun import errors
from cangyun.httpapi import DOMAIN_STATUS, status_of


def assert_canonical_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert isinstance(body["error"]["code"], str) and body["error"]["code"]
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert isinstance(body["error"]["details"], dict)
    if code is not None:
        assert body["error"]["code"] == code
    return body["error"]


@pytest.fixture
def owner(cloud):
    token = cloud.register("错误形状仓储", "owner@shape.test")["token"]
    cloud.buy(token, "professional")
    return token


def boom():
    raise RuntimeError("a bug")


# --- the HTTP layer -----------------------------------------------------------------------


def test_cloud_http_layer(cloud, owner):
    assert_canonical_error(cloud.call("GET", "/api/v1/no-such-thing", owner), 404, "not_found")
    wrong_method = cloud.call("DELETE", "/api/v1/catalog", owner)
    assert_canonical_error(wrong_method, 405, "method_not_allowed")
    assert "GET" in wrong_method.headers["Allow"]
    huge = cloud.call("POST", "/api/v1/tasks", owner, data=b"{" + b" " * (9 * 1024 * 1024) + b"}",
                      content_type="application/json")  # fmt: skip
    assert_canonical_error(huge, 413, "payload_too_large")
    as_xml = cloud.call("POST", "/api/v1/tasks", owner, data="<task/>", content_type="text/xml")
    assert_canonical_error(as_xml, 415, "unsupported_media_type")
    assert_canonical_error(cloud.call("GET", "/api/v1/tasks?status=%00", owner), 400,
                           "invalid_parameter")  # fmt: skip


def test_edge_http_layer(edge_client):
    assert_canonical_error(edge_client.get("/api/v1/no-such-thing"), 404, "not_found")
    assert_canonical_error(edge_client.delete("/api/v1/stock"), 405, "method_not_allowed")
    assert_canonical_error(edge_client.get("/api/v1/movements?type=%00"), 400, "invalid_parameter")


# --- the body parser and the declared models ------------------------------------------------


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        (b"{not json", 400, "invalid_json", None),
        (b"", 400, "invalid_json", None),
        (b"[1, 2]", 400, "invalid_body", None),
        (b'{"kind": "count"}', 422, "missing_field", "title"),
        (b'{"title": "t", "kind": "count", "colour": "red"}', 422, "unknown_field", "colour"),
        (b'{"title": "t", "kind": "dance"}', 422, "invalid_field", "kind"),
        (b'{"title": "t\\u0000", "kind": "count"}', 422, "invalid_text", "title"),
    ],
)
def test_cloud_body_errors(cloud, owner, body, status, code, field):
    response = cloud.call(
        "POST", "/api/v1/tasks", owner, data=body, content_type="application/json"
    )
    error = assert_canonical_error(response, status, code)
    if field is not None:
        assert error["details"]["field"] == field


def test_edge_body_errors(edge_client):
    bad_json = edge_client.post("/api/v1/movements", data=b"{", content_type="application/json")
    assert_canonical_error(bad_json, 400, "invalid_json")
    unknown = edge_client.post(
        "/api/v1/movements", json={"type": "receive", "qty": 1, "colour": "red"}
    )
    assert unknown.status_code == 422
    assert_canonical_error(unknown, 422)
    assert unknown.get_json()["error"]["details"]["field"] == "colour"


def test_query_parameters_are_refused_with_400(cloud, owner):
    error = assert_canonical_error(
        cloud.call("GET", "/api/v1/movements?limit=0", owner), 400, "invalid_parameter"
    )
    assert "limit" in error["message"]
    assert_canonical_error(cloud.call("GET", "/api/v1/stock?gtin=123", owner), 400,
                           "invalid_parameter")  # fmt: skip


# --- domain refusals, through the one table -----------------------------------------------


def test_each_kind_of_domain_refusal_has_one_status():
    assert status_of(errors.NotFound("x")) == 404
    assert status_of(errors.AlreadyExists("x")) == 409
    assert status_of(errors.Conflict("x")) == 409
    assert status_of(errors.Invalid("x")) == 422
    assert status_of(errors.Forbidden("x")) == 403
    assert status_of(errors.Unavailable("x")) == 503
    # Every kind the module defines is in the table, and nothing else is.
    kinds = {
        v
        for v in vars(errors).values()
        if isinstance(v, type) and issubclass(v, errors.DomainError)
    }
    assert kinds <= {kind for kind, _ in DOMAIN_STATUS} | {errors.AlreadyExists}


def test_cloud_domain_refusals(cloud, owner):
    missing = cloud.call("PATCH", "/api/v1/tasks/999", owner, json={"title": "x"})
    assert_canonical_error(missing, 404, "not_found")
    unknown_warehouse = cloud.call(
        "POST", "/api/v1/tasks", owner, json={"title": "t", "kind": "count", "warehouse": "nope"}
    )
    error = assert_canonical_error(unknown_warehouse, 422, "unknown_warehouse")
    assert error["details"]["field"] == "warehouse"
    no_plugin = cloud.call("POST", "/api/v1/plugins/no_such_plugin/enable", owner)
    assert_canonical_error(no_plugin, 404, "not_found")


# --- authentication and rights --------------------------------------------------------------


def test_cloud_authentication(cloud, owner):
    anonymous = cloud.call("GET", "/api/v1/tasks")
    assert_canonical_error(anonymous, 401, "unauthorized")
    assert anonymous.headers["WWW-Authenticate"] == "Bearer"
    assert_canonical_error(cloud.call("GET", "/api/v1/tasks", "cy_forged"), 401, "unauthorized")


def test_edge_authentication(edge_client):
    edge_client.environ_base.pop("HTTP_AUTHORIZATION")
    assert_canonical_error(edge_client.get("/api/v1/stock"), 401)


# --- the unexpected -------------------------------------------------------------------------


def test_an_unexpected_exception_is_a_logged_500_without_a_trace(
    cloud, edge_app, edge_client, caplog
):
    for app in (cloud.app, edge_app):
        app.add_url_rule("/boom", view_func=boom)  # a route with a bug in it
    for response in (cloud.client.get("/boom"), edge_client.get("/boom")):
        error = assert_canonical_error(response, 500, "internal_error")
        assert "a bug" not in error["message"] and "Traceback" not in response.get_data(True)
    assert "unhandled error on GET /boom" in caplog.text
