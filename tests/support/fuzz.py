"""Fuzzing an app's API from its own OpenAPI document with Schemathesis."""

from __future__ import annotations

import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

# No 500s, and every answer is one the document declares: its status, its content type and
# its body's schema (so a client generated from the document can read every answer).
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


# Requests the schema allows, and requests it forbids (wrong types, out-of-range numbers, missing
# fields, path ids past any row): both must get an answer the document declares.
EXAMPLES = {GenerationMode.POSITIVE: 25, GenerationMode.NEGATIVE: 10}


def fuzz_every_operation(app: Flask, token: str, *, leave_out: frozenset[str] = frozenset()) -> int:
    """Every operation but those in ``leave_out``, as ``token``'s caller; fails listing
    every operation that broke a check, else answers how many operations it walked."""
    # Schemathesis' own pytest plumbing does not run under pytest 9, so each operation's
    # case strategy is driven by Hypothesis here, and every failure is reported at once.
    api = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    headers = {"Authorization": f"Bearer {token}"}
    failures, walked = [], 0
    for result in api.get_all_operations():
        operation = result.ok()
        if operation.path in leave_out:
            continue
        walked += 1
        for mode, examples in EXAMPLES.items():

            @settings(
                max_examples=examples,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy(generation_mode=mode))
            def fuzz(case):
                case.call_and_validate(headers=headers, checks=CHECKS)

            try:
                fuzz()
            except Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE  # nothing to get wrong (GET /catalog)
            except Exception as exc:  # noqa: BLE001 - collected, reported together below
                failures.append(f"{mode.value} {operation.method.upper()} {operation.path}: {exc}")
    assert not failures, "\n\n".join(failures)
    return walked
