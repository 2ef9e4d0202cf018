"""Every published cloud operation, fuzzed from the OpenAPI document by Schemathesis.

Whatever Hypothesis makes of the schema (wrong types, huge numbers, NUL bytes, unknown
fields, paths naming nothing), the API must answer with a client error or success, never a
500, and only as the document declares (tests.support.fuzz). The caller is a paying
professional tenant's owner with every add-on, so requests get past authentication and
entitlement into the handlers where the bugs would be. The same run goes against SQLite and
PostgreSQL, whose failure modes differ (NUL bytes, integer ranges, JSON operators).
"""

from __future__ import annotations

import pytest

from cloud_api.accounts import store as accounts
from tests.conftest import fresh_postgres
from tests.support.cloud import STRONG, make_cloud
from tests.support.fuzz import fuzz_every_operation

STAFF_PATHS = "/api/v1/platform/"  # platform staff only: a tenant's owner meets 403 first


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


def test_no_cloud_operation_answers_500_or_off_the_document(fuzzed_cloud):
    # Signing out or changing the password would end the session every other case uses.
    walked = fuzz_every_operation(
        fuzzed_cloud.app,
        fuzzed_cloud.token,
        leave_out=frozenset({"/api/v1/auth/logout", "/api/v1/auth/password"}),
    )
    assert walked >= 60


def test_no_platform_staff_operation_answers_500_or_off_the_document(fuzzed_cloud):
    """The platform's own operations (orders across tenants, confirming transfers) refuse the
    tenant's owner at once (403), so they are fuzzed again as platform staff."""
    spec = fuzzed_cloud.client.get("/api/v1/openapi.json").get_json()
    others = frozenset(p for p in spec["paths"] if not p.startswith(STAFF_PATHS))
    walked = fuzz_every_operation(fuzzed_cloud.app, fuzzed_cloud.staff_token(), leave_out=others)
    assert walked >= 2


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
                token = (
                    fuzzed_cloud.staff_token()
                    if path.startswith(STAFF_PATHS)
                    else fuzzed_cloud.token
                )
                answer = fuzzed_cloud.call(
                    method.upper(), f"{path}?{parameter['name']}={10**30}", token
                )
                tried.append(f"{method} {path} {parameter['name']}")
                assert answer.status_code == 400, (tried[-1], answer.get_json())
                assert answer.get_json()["error"]["details"]["parameter"] == parameter["name"]
                # Past a 32-bit INTEGER column (PostgreSQL's row ids) but inside a bigint:
                # an empty page or a 400, never the driver's overflow.
                answer = fuzzed_cloud.call(
                    method.upper(), f"{path}?{parameter['name']}={2**40}", token
                )
                assert answer.status_code in {200, 400}, (tried[-1], answer.get_json())
    assert len(tried) >= 3, tried
