"""The edge box's API (movements, stock, gates, cameras, scans), fuzzed from its OpenAPI
document on a real SQLite file: never a 500, only declared answers (tests.support.fuzz)."""

from __future__ import annotations

from tests.conftest import EDGE_TOKEN
from tests.support.fuzz import fuzz_every_operation


def test_no_edge_operation_answers_500_or_off_the_document(edge_app):
    # A gate, so gate and camera paths sometimes name something real.
    gate = {"code": "d1", "direction": "in"}
    client = edge_app.test_client()
    auth = {"Authorization": f"Bearer {EDGE_TOKEN}"}
    assert client.post("/api/v1/gates", json=gate, headers=auth).status_code == 201
    assert fuzz_every_operation(edge_app, EDGE_TOKEN) >= 20
