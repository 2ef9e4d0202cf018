"""Each HTTP body declared once: the pydantic models of a route validate its request and write
its part of the OpenAPI document.

A route states its contract under its other decorators::

    @bp.post("/tasks")
    @requires("tasks:write")
    @operation("Create a task", body=NewTask, responses={201: Task, 404: "no such warehouse"})
    def create_task(body: NewTask) -> Response: ...

``operation`` parses the JSON body into ``body=`` (unknown fields refused, one 422 vocabulary:
``missing_field``, ``unknown_field``, ``invalid_field``) and the query string into ``query=``
(400 ``invalid_parameter``), after the guards above it have run, so a caller without the right
gets 403 before anyone looks at the body. ``document()`` walks the app's URL map, so a path or
method exists in the document exactly when Flask routes it. With ``CHECK_RESPONSES`` set (the
tests set it), every JSON answer is validated against the declared model of its status, and a
status the route does not declare fails the request: the document cannot drift from the code.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import orjson
from flask import Flask, Response, current_app, request
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError
from werkzeug.routing import IntegerConverter

from cangyun.fields import PATTERN_WORDS
from cangyun.httpapi import MAX_ROW_ID, ApiError, json_body

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")

DEFAULT_MAX_BODY = 64 * 1024
REF = "#/components/schemas/{model}"


class Body(BaseModel):
    """A request body: every field declared, nothing else accepted."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Query(BaseModel):
    """Query-string parameters (strings on the wire, converted by the declared types)."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)


class Reply(BaseModel):
    """A response body. Extra keys are refused so the document lists every field answered."""

    model_config = ConfigDict(extra="forbid")


class Page(Reply, Generic[T]):
    """Cursor pagination: ``next`` is the cursor of the following page, or null on the last."""

    total: int
    items: list[T]
    next: str | None


class ErrorBody(Reply):
    code: str
    message: str
    details: dict[str, Any]


class Error(Reply):
    error: ErrorBody


@dataclass(frozen=True)
class Media:
    """A body that is not JSON (a PDF, an image upload, a CSV file): documented, not parsed."""

    media_type: str
    description: str = ""
    schema: dict[str, Any] = field(default_factory=lambda: {"type": "string", "format": "binary"})


@dataclass(frozen=True)
class Operation:
    summary: str
    body: type[Body] | Media | tuple[Media, ...] | None
    query: type[Query] | None
    responses: Mapping[int, Any]
    tags: tuple[str, ...]
    public: bool
    max_bytes: int
    description: str
    deprecated: bool = False


def operation(
    summary: str,
    *,
    responses: Mapping[int, Any],
    body: type[Body] | Media | tuple[Media, ...] | None = None,
    query: type[Query] | None = None,
    tags: tuple[str, ...] | list[str] = (),
    public: bool = False,
    max_bytes: int = DEFAULT_MAX_BODY,
    description: str = "",
) -> Callable[[F], F]:
    """Declare a route's request and responses; see the module docstring."""
    op = Operation(
        summary, body, query, dict(responses), tuple(tags), public, max_bytes, description
    )
    parsed_body = body if isinstance(body, type) and issubclass(body, BaseModel) else None

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if query is not None:
                kwargs["query"] = parse_query(query)
            if parsed_body is not None:
                kwargs["body"] = parse_body(parsed_body, max_bytes)
            result = view(*args, **kwargs)
            if current_app.config.get("CHECK_RESPONSES"):
                check_response(op, result)
            return result

        wrapper.openapi = op  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate


# --- requests -----------------------------------------------------------------------------


def field_path(loc: tuple[Any, ...]) -> str:
    """``("contacts", 0, "phone")`` → ``contacts[0].phone``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def parse_body(model: type[BaseModel], max_bytes: int = DEFAULT_MAX_BODY) -> Any:
    data = json_body(max_bytes)
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_body", "send a JSON object")
    return validate(model, data)


def validate(model: type[BaseModel], data: dict[str, Any]) -> Any:
    """``data`` as ``model``, or the first problem as a 422 that names the field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise field_error(exc) from exc


def field_error(exc: ValidationError) -> ApiError:
    first = exc.errors(include_url=False)[0]
    name = field_path(first["loc"]) or "body"
    kind = first["type"]
    if kind == "missing":
        return ApiError(422, "missing_field", f"{name} is required", {"field": name})
    if kind == "extra_forbidden":
        return ApiError(
            422, "unknown_field", f"{name} is not a field of this body", {"field": name}
        )
    return ApiError(422, "invalid_field", f"{name}: {_said(first)}", {"field": name})


def _said(error: Any) -> str:
    """A pydantic error in words a person can act on: a pattern is named, not quoted."""
    if error["type"] == "string_pattern_mismatch":
        return PATTERN_WORDS.get(error["ctx"]["pattern"], "contains characters not allowed here")
    return str(error["msg"]).removeprefix("Value error, ")


def parse_query(model: type[Query]) -> Any:
    raw: dict[str, Any] = {}
    for name in model.model_fields:
        alias = model.model_fields[name].alias or name
        values = request.args.getlist(alias)
        if values:
            raw[alias] = values if _is_list(model, name) else values[-1]
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        name = field_path(first["loc"])
        message = _said(first)
        raise ApiError(400, "invalid_parameter", f"{name}: {message}", {"parameter": name}) from exc


def _is_list(model: type[BaseModel], name: str) -> bool:
    annotation = model.model_fields[name].annotation
    return getattr(annotation, "__origin__", None) is list


# --- responses ----------------------------------------------------------------------------

_adapters: dict[Any, TypeAdapter[Any]] = {}


def _adapter(kind: Any) -> TypeAdapter[Any]:
    found = _adapters.get(kind)
    if found is None:
        found = _adapters[kind] = TypeAdapter(kind)
    return found


def check_response(op: Operation, result: Any) -> None:
    """Fail loudly when an answer is not what the route declares (tests only)."""
    if not isinstance(result, Response):
        return
    status = result.status_code
    if status >= 400:
        declared: Any = Error
    elif status not in op.responses:
        raise AssertionError(f"{request.endpoint} answered {status}, which it does not declare")
    else:
        declared = op.responses[status]
    if declared is None or isinstance(declared, str | Media):
        if result.mimetype == "application/json" and status < 400 and result.data:
            raise AssertionError(f"{request.endpoint} {status}: JSON answered, no model declared")
        return
    if result.mimetype != "application/json":
        raise AssertionError(f"{request.endpoint} {status}: expected JSON, got {result.mimetype}")
    try:
        _adapter(declared).validate_python(orjson.loads(result.get_data()))
    except ValidationError as exc:
        raise AssertionError(
            f"{request.endpoint} {status} does not match its model: {exc}"
        ) from exc


# --- the document -------------------------------------------------------------------------

_RULE_ARG = re.compile(r"<(?:(?P<conv>[^:<>]+):)?(?P<name>[^<>]+)>")
STANDARD_ERRORS = {
    400: "malformed request (bad JSON, wrong parameter)",
    401: "missing, expired or invalid bearer token",
    403: "the caller's role, scopes or edition do not allow this",
    413: "body too large",
    415: "body is not JSON",
    422: "a field is missing, unknown or invalid (details.field names it)",
}


def is_model(kind: Any) -> bool:
    return isinstance(kind, type) and issubclass(kind, BaseModel)


class _Schemas:
    """Components collected while the paths are written, one name per model."""

    def __init__(self) -> None:
        self.components: dict[str, Any] = {"Error": None}
        self._named: dict[Any, str] = {}

    def ref(self, kind: Any, mode: str) -> dict[str, Any]:
        schema = _adapter(kind).json_schema(ref_template=REF, mode=mode)  # type: ignore[arg-type]
        for name, sub in schema.pop("$defs", {}).items():
            self.add(name, sub)
        if is_model(kind):
            name = schema.get("title", kind.__name__)
            self.add(name, schema)
            return {"$ref": REF.format(model=name)}
        return schema

    def add(self, name: str, schema: dict[str, Any]) -> None:
        """One component per name: two different models of one name would silently document
        one of them under both, so that is refused (rename one of the classes)."""
        known = self.components.get(name)
        if known is not None and known != schema:
            raise ValueError(f"two different models are both named {name!r} in the API")
        self.components[name] = schema


def document(
    app: Flask,
    *,
    title: str,
    version: str,
    description: str,
    prefix: str = "/api/v1",
) -> dict[str, Any]:
    schemas = _Schemas()
    paths: dict[str, dict[str, Any]] = {}
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if not rule.rule.startswith(prefix):
            continue
        op: Operation | None = getattr(app.view_functions[rule.endpoint], "openapi", None)
        if op is None:
            continue
        view = app.view_functions[rule.endpoint]
        path, params = _path(rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            paths.setdefault(path, {})[method.lower()] = _operation(
                op, view, params, schemas, rule.endpoint
            )
    error = _adapter(Error).json_schema(ref_template=REF)
    for name, sub in error.pop("$defs", {}).items():
        schemas.components.setdefault(name, sub)
    schemas.components["Error"] = error
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version, "description": description},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": dict(sorted(schemas.components.items())),
        },
        "security": [{"bearer": []}],
        "paths": paths,
    }


def _path(rule: Any) -> tuple[str, list[dict[str, Any]]]:
    params = []
    for match in _RULE_ARG.finditer(rule.rule):
        converter = rule._converters.get(match["name"])
        if isinstance(converter, IntegerConverter):
            schema: dict[str, Any] = {"type": "integer", "minimum": 1, "maximum": MAX_ROW_ID}
        else:
            schema = {"type": "string", "minLength": 1, "pattern": "^[^/]+$"}
        params.append({"name": match["name"], "in": "path", "required": True, "schema": schema})
    return _RULE_ARG.sub(lambda m: "{" + m["name"] + "}", rule.rule), params


def _operation(
    op: Operation, view: Any, params: list[dict[str, Any]], schemas: _Schemas, endpoint: str
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "operationId": endpoint.replace(".", "_"),
        "summary": op.summary,
        "tags": list(op.tags) or [endpoint.split(".")[-2] if "." in endpoint else "api"],
    }
    if op.description:
        out["description"] = op.description
    parameters = list(params)
    if op.query is not None:
        parameters += _query_params(op.query, schemas)
    if parameters:
        out["parameters"] = parameters
    errors: dict[int, str] = {}
    if op.body is not None:
        content: dict[str, Any] = {}
        if is_model(op.body):
            content["application/json"] = {"schema": schemas.ref(op.body, "validation")}
            errors.update({s: STANDARD_ERRORS[s] for s in (400, 413, 415, 422)})
        else:
            for media in op.body if isinstance(op.body, tuple) else (op.body,):
                assert isinstance(media, Media)
                content[media.media_type] = {"schema": media.schema}
            errors.update({s: STANDARD_ERRORS[s] for s in (400, 413, 415)})
        out["requestBody"] = {"required": True, "content": content}
    if op.query is not None:
        errors[400] = STANDARD_ERRORS[400]
    if not op.public:
        errors[401] = STANDARD_ERRORS[401]
        out_security = None
    else:
        out_security = []
    if getattr(view, "permission", None) or getattr(view, "feature", None):
        errors[403] = STANDARD_ERRORS[403]
    responses: dict[str, Any] = {}
    for status, declared in sorted({**errors, **op.responses}.items()):
        responses[str(status)] = _response(status, declared, schemas)
    out["responses"] = responses
    if out_security is not None:
        out["security"] = out_security
    return out


def _response(status: int, declared: Any, schemas: _Schemas) -> dict[str, Any]:
    if status >= 400:
        text = declared if isinstance(declared, str) else STANDARD_ERRORS.get(status, "refused")
        return {
            "description": text,
            "content": {"application/json": {"schema": {"$ref": REF.format(model="Error")}}},
        }
    if isinstance(declared, Media):
        return {
            "description": declared.description or declared.media_type,
            "content": {declared.media_type: {"schema": declared.schema}},
        }
    if declared is None or isinstance(declared, str):
        return {"description": declared or "no content"}
    name = getattr(declared, "__name__", "result")
    return {
        "description": (declared.__doc__ or name).strip().split("\n")[0]
        if is_model(declared)
        else name,
        "content": {"application/json": {"schema": schemas.ref(declared, "serialization")}},
    }


def _query_params(model: type[Query], schemas: _Schemas) -> list[dict[str, Any]]:
    schema = _adapter(model).json_schema(ref_template=REF)
    for name, sub in schema.pop("$defs", {}).items():
        schemas.add(name, sub)
    required = set(schema.get("required", ()))
    out = []
    for name, prop in schema.get("properties", {}).items():
        param: dict[str, Any] = {"name": name, "in": "query", "required": name in required}
        description = prop.pop("description", None)
        prop.pop("title", None)
        if description:
            param["description"] = description
        param["schema"] = prop
        out.append(param)
    return out


def undeclared_routes(app: Flask, prefix: str = "/api/v1") -> list[str]:
    """Routes under ``prefix`` without an ``operation`` declaration (a test keeps this empty)."""
    return sorted(
        f"{sorted(r.methods - {'HEAD', 'OPTIONS'})} {r.rule}"
        for r in app.url_map.iter_rules()
        if r.rule.startswith(prefix)
        and getattr(app.view_functions[r.endpoint], "openapi", None) is None
    )
