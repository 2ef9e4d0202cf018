"""The human-readable API page (cloud and edge) is generated from the OpenAPI document and
lists all of it."""

from __future__ import annotations

import html
from dataclasses import replace

import pytest

from cangyun.box_settings import EdgeSettings
from edge import gates
from edge.app import create_app
from tests.support.cloud import make_cloud


@pytest.fixture(params=["cloud", "edge"])
def client(request, tmp_path):
    if request.param == "cloud":
        cloud = make_cloud(tmp_path, f"sqlite:///{tmp_path / 'cloud.sqlite'}")
        yield cloud.client
        cloud.engine.dispose()
        return
    base = EdgeSettings()
    app = create_app(replace(base, edge=replace(base.edge, data_dir=tmp_path / "edge")))
    yield app.test_client()
    gates.close(app)
    app.extensions["cangyun.edge_store"].close()


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
