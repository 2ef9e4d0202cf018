"""HTTP API conventions shared by the edge and the cloud (DESIGN section 8).

One error body, ``{"error": {"code", "message", "details"}}``, built here and nowhere else;
every Flask app registers these handlers so no request ends in an HTML error page or a
stack trace.
"""

from __future__ import annotations

import base64
import binascii
import logging
from typing import Any

import orjson
from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.routing import IntegerConverter

from cangyun import errors

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error the client can act on: HTTP status, stable code, human message, details."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details or {}
        self.headers = headers or {}


def error_response(
    status: int,
    code: str,
    message: str,
    details: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body = {"error": {"code": code, "message": message, "details": details or {}}}
    response = json_response(body, status)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def json_response(body: Any, status: int = 200) -> Response:
    return Response(
        orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS),
        status=status,
        mimetype="application/json",
    )


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
}


# The one table from domain refusals to statuses; the most specific class wins.
DOMAIN_STATUS: tuple[tuple[type[errors.DomainError], int], ...] = (
    (errors.NotFound, 404),
    (errors.Conflict, 409),
    (errors.Invalid, 422),
    (errors.Forbidden, 403),
    (errors.Unauthenticated, 401),
    (errors.Throttled, 429),
    (errors.Unavailable, 503),
    (errors.DomainError, 400),
)


def status_of(exc: errors.DomainError) -> int:
    return next(status for kind, status in DOMAIN_STATUS if isinstance(exc, kind))


def _headers(exc: errors.DomainError) -> dict[str, str]:
    """The headers a status promises: when to retry a 429, how to authenticate after a 401."""
    if isinstance(exc, errors.Throttled) and "retry_after" in exc.details:
        return {"Retry-After": str(exc.details["retry_after"])}
    if isinstance(exc, errors.Unauthenticated) and exc.code == "unauthorized":
        return {"WWW-Authenticate": "Bearer"}
    return {}


MAX_ROW_ID = 2**31 - 1


class RowIdConverter(IntegerConverter):
    """``<int:...>`` bounded to a row id (INTEGER, 32-bit on PostgreSQL): a larger number
    names nothing (404) rather than overflowing the database driver to find that out.

    The bound is checked after matching, not by the converter's ``max``: werkzeug turns a
    value refused by one of two rules on the same path (GET and PATCH) into 405."""

    def to_python(self, value: str) -> Any:
        number = super().to_python(value)
        if number > MAX_ROW_ID:
            raise NotFound(f"nothing has the number {value}")
        return number


def register_error_handlers(app: Flask) -> None:
    # Must precede the routes: a rule picks its converter when it is added.
    app.url_map.converters["int"] = RowIdConverter

    @app.before_request
    def _no_nul_in_url() -> None:
        # NUL is never meaningful in a URL, and PostgreSQL refuses it in text: say so up front.
        if "\x00" in request.path or any(
            "\x00" in key or "\x00" in value for key, value in request.args.items(multi=True)
        ):
            raise ApiError(400, "invalid_parameter", "the URL contains a NUL character")

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> Response:
        return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)

    @app.errorhandler(errors.DomainError)
    def _domain_error(exc: errors.DomainError) -> Response:
        return error_response(status_of(exc), exc.code, exc.message, exc.details, _headers(exc))

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        code = _HTTP_CODES.get(status, "http_error")
        # Keep what the exception says about itself, e.g. Allow on a 405.
        headers = {k: v for k, v in exc.get_headers() if k.lower() != "content-type"}
        return error_response(status, code, exc.description or exc.name, headers=headers)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal_error", "internal error; the incident was logged")


def json_body(max_bytes: int = 1024 * 1024) -> Any:
    """The request's JSON body, or a 4xx ApiError that says what is wrong with it."""
    length = request.content_length
    if length is not None and length > max_bytes:
        raise ApiError(413, "payload_too_large", f"body exceeds {max_bytes} bytes")
    mimetype = request.mimetype
    # curl -d sends form-encoded by default; accept it when the body is JSON anyway.
    if mimetype and mimetype not in ("application/json", "application/x-www-form-urlencoded"):
        raise ApiError(
            415, "unsupported_media_type", "send JSON with Content-Type: application/json"
        )
    raw = request.get_data(cache=False)
    if len(raw) > max_bytes:
        raise ApiError(413, "payload_too_large", f"body exceeds {max_bytes} bytes")
    if not raw:
        raise ApiError(400, "invalid_json", "request body is empty; send a JSON object")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, "invalid_json", f"request body is not valid JSON: {exc}") from exc
    if b"\\u0000" in raw:  # only then is the walk worth it
        field = _nul_at(data, "")
        if field is not None:
            raise ApiError(
                422,
                "invalid_text",
                "text in the body must not contain NUL characters",
                {"field": field or "body"},
            )
    return data


def uploaded_image(max_bytes: int) -> bytes:
    """The uploaded photo: the multipart field ``image`` or the raw body (edge scans, gate
    frames and the OCR service all take it this way). The engine checks what the bytes are."""
    if request.content_length is not None and request.content_length > max_bytes + 65536:
        raise ApiError(413, "image_too_large", f"uploads are limited to {max_bytes // 2**20} MB")
    if request.mimetype == "multipart/form-data":
        upload = request.files.get("image")
        if upload is None:
            raise ApiError(400, "missing_image", "send the photo in the multipart field 'image'")
        return upload.read(max_bytes + 1)
    return request.get_data(cache=False)


def _nul_at(value: Any, path: str) -> str | None:
    """Where the first NUL character is (``name``, ``contacts[0].phone``), or None."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{path}.{key}" if path else str(key)
            if "\x00" in str(key):
                return here
            found = _nul_at(item, here)
            if found is not None:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = _nul_at(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def encode_cursor(value: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(value)).decode().rstrip("=")


def decode_cursor(text: str) -> Any:
    try:
        padded = text + "=" * (-len(text) % 4)
        return orjson.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, orjson.JSONDecodeError) as exc:
        raise ApiError(400, "invalid_cursor", "the pagination cursor is not valid") from exc


def query_int(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ApiError(400, "invalid_parameter", f"{name} must be an integer") from exc
    if not low <= value <= high:
        raise ApiError(400, "invalid_parameter", f"{name} must be between {low} and {high}")
    return value


def page(total: int, items: list[Any], next_cursor: str | None) -> dict[str, Any]:
    return {"total": total, "items": items, "next": next_cursor}
