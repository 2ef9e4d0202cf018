"""Every published operation, fuzzed from the OpenAPI document by Schemathesis.

Whatever Hypothesis makes of the schema (wrong types, huge numbers, NUL bytes, unknown
fields, paths naming nothing), the API must answer with a client error or success, never a
500. The caller is a paying professional tenant's owner with every add-on, so requests get
past authentication and entitlement into the handlers where the bugs would be. The same
run goes against SQLite and PostgreSQL, whose failure modes differ (NUL bytes, integer
ranges, JSON operators).
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from cloud_api.accounts import store as accounts
from tests.conftest import fresh_postgres
from tests.support.cloud import STRONG, make_cloud

# No 500s, and every answer is one the document declares: its status, its content type and
# its body's schema (so a client generated from the document can read every answer).
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def fuzzed_cloud(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fuzz")
    if request.param == "sqlite":
        url_cm = None
        database_url = f"sqlite:///{tmp / 'cloud.sqlite'}"
    else:
        url_cm = fresh_postgres()
        database_url = url_cm.__enter__()
    cloud = make_cloud(tmp, database_url)
    accounts.ensure_platform_staff(cloud.engine, "ops@cangyun.cn", STRONG)
    owner = cloud.register("模糊测试仓储", "owner@fuzz.test")
    token = owner["token"]
    cloud.buy(token, "professional", add_ons=("managed_operations", "ocr_scanning"))
    # Something to find, so generated identifiers sometimes hit real rows.
    for method, path, body in [
        ("POST", "/api/v1/customers", {"code": "1", "name": "华东"}),
        ("POST", "/api/v1/warehouses", {"code": "1", "name": "一号库"}),
        ("POST", "/api/v1/warehouses/1/zones", {"code": "1", "name": "一区"}),
        ("POST", "/api/v1/tasks", {"title": "盘点", "kind": "count"}),
    ]:
        assert cloud.call(method, path, token, json=body).status_code == 201
    cloud.token = token
    yield cloud
    cloud.engine.dispose()
    if url_cm is not None:
        url_cm.__exit__(None, None, None)


def test_no_operation_answers_500_or_off_the_document(fuzzed_cloud):
    # Schemathesis' own pytest plumbing does not run under pytest 9, so each operation's
    # case strategy is driven by Hypothesis here, and every failure is reported at once.
    api = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", fuzzed_cloud.app)
    headers = {"Authorization": f"Bearer {fuzzed_cloud.token}"}
    failures, walked = [], 0
    for result in api.get_all_operations():
        operation = result.ok()
        if operation.path in {"/api/v1/auth/logout", "/api/v1/auth/password"}:
            continue  # would end or change the session every other case uses

        @settings(
            max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck)
        )
        @given(case=operation.as_strategy())
        def fuzz(case):
            case.call_and_validate(headers=headers, checks=CHECKS)

        walked += 1
        try:
            fuzz()
        except Exception as exc:  # noqa: BLE001 - collected, reported together below
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
    assert walked >= 60
    assert not failures, "\n\n".join(failures)


def test_every_integer_in_a_query_string_is_bounded(fuzzed_cloud):
    """A number past what the databases hold (SQLite and PostgreSQL stop at 2**63 - 1) is the
    caller's mistake, answered 400, not an overflow inside the store."""
    spec = fuzzed_cloud.client.get("/api/v1/openapi.json").get_json()
    tried = []
    for path, item in spec["paths"].items():
        if "{" in path:
            continue
        for method, operation in item.items():
            for parameter in operation.get("parameters", []):
                schema = parameter["schema"]
                kinds = [schema, *schema.get("anyOf", [])]
                if parameter["in"] != "query" or not any(k.get("type") == "integer" for k in kinds):
                    continue
                answer = fuzzed_cloud.call(
                    method.upper(), f"{path}?{parameter['name']}={10**30}", fuzzed_cloud.token
                )
                tried.append(f"{method} {path} {parameter['name']}")
                assert answer.status_code == 400, (tried[-1], answer.get_json())
                assert answer.get_json()["error"]["details"]["parameter"] == parameter["name"]
    assert len(tried) >= 3, tried
