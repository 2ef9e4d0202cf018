"""The human-readable API page is generated from the OpenAPI document and lists all of it."""

from __future__ import annotations

import html

from tests.support.cloud import make_cloud


def test_the_docs_page_lists_every_operation_without_login(tmp_path):
    cloud = make_cloud(tmp_path, f"sqlite:///{tmp_path / 'cloud.sqlite'}")
    page = cloud.client.get("/api/docs")
    assert page.status_code == 200 and page.mimetype == "text/html"
    text = html.unescape(page.get_data(as_text=True))
    spec = cloud.client.get("/api/v1/openapi.json").get_json()
    listed = 0
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in {"get", "post", "put", "patch", "delete"}:
                assert path in text and operation["summary"] in text, (method, path)
                listed += 1
    assert text.count('<span class="m ') == listed
    assert "public 无需认证" in text  # sign-up and the catalogue need no token
    cloud.engine.dispose()
