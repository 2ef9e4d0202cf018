"""The human-readable API page (cloud and edge) is generated from the OpenAPI document and
lists all of it."""

from __future__ import annotations

import html
import re

import pytest

from cangyun import apispec
from cangyun.apidocs import resolve
from tests.support.cloud import make_cloud


@pytest.fixture(params=["cloud", "edge"])
def client(request, tmp_path, make_edge_app):
    if request.param == "cloud":
        cloud = make_cloud(tmp_path, f"sqlite:///{tmp_path / 'cloud.sqlite'}")
        yield cloud.client
        cloud.engine.dispose()
        return
    yield make_edge_app().test_client()


def test_every_api_route_declares_its_bodies_and_is_in_the_document(client):
    app = client.application
    assert apispec.undeclared_routes(app) == []
    spec = client.get("/api/v1/openapi.json").get_json()
    documented = {(path, method) for path, ops in spec["paths"].items() for method in ops}
    routed = {
        (re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule), method.lower())
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/api/v1")
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    assert routed - documented == set()
    assert documented - routed == set()


def test_the_docs_page_lists_every_operation_without_login(client):
    page = client.get("/api/docs")
    assert page.status_code == 200 and page.mimetype == "text/html"
    text = html.unescape(page.get_data(as_text=True))
    spec = client.get("/api/v1/openapi.json").get_json()
    listed = 0
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in {"get", "post", "put", "patch", "delete"}:
                assert path in text and operation["summary"] in text, (method, path)
                listed += 1
    assert text.count('<span class="m ') == listed
    assert "public 无需认证" in text  # e.g. sign-up, or this document itself


def _referenced(content: dict) -> str | None:
    ref = content.get("schema", {}).get("$ref", "")
    return ref.removeprefix("#/components/schemas/") if ref else None


def test_the_page_writes_out_the_models_the_document_refers_to(client):
    text = html.unescape(client.get("/api/docs").get_data(as_text=True))
    spec = client.get("/api/v1/openapi.json").get_json()
    components = spec["components"]["schemas"]
    shown = set()
    for item in spec["paths"].values():
        for operation in item.values():
            holders = [operation.get("requestBody", {})] + [
                answer for status, answer in operation["responses"].items() if status < "400"
            ]
            for holder in holders:
                for content in holder.get("content", {}).values():
                    name = _referenced(content)
                    if name is None:
                        continue
                    assert f">{name}</span>" in text, name  # the model is named ...
                    for field in components[name].get("properties", {}):
                        assert f'"{field}":' in text, (name, field)  # ... and written out
                    shown.add(name)
    assert shown, "the document refers to its models"
    assert '"$ref":' not in text  # every reference written out (no model contains itself)
    # Offline: nothing to run and nothing fetched from elsewhere.
    assert "<script" not in text and "<link" not in text
    assert not re.search(r"""(?:src|href)=["']?(?:https?:)?//""", text)


REF = "#/components/schemas/"


def test_resolve_inlines_references_and_stops_at_a_model_that_contains_itself():
    components = {
        "Node": {
            "title": "Node",
            "type": "object",
            "properties": {
                "title": {"title": "Title", "type": "string"},
                "child": {"anyOf": [{"$ref": f"{REF}Node"}, {"type": "null"}]},
            },
        }
    }
    assert resolve({"$ref": f"{REF}Node"}, components) == {
        "type": "object",
        "properties": {
            "title": {"type": "string"},
            "child": {"anyOf": [{"$ref": f"{REF}Node"}, {"type": "null"}]},
        },
    }
