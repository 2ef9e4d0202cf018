"""The one vocabulary of refusals, shared by every store and service of edge and cloud.

A domain module raises one of these kinds and says what went wrong in a stable ``code``; it
never names an HTTP status. Each app maps the kinds to statuses in one table
(``cangyun.httpapi.DOMAIN_STATUS``), so a route never catches a domain error to translate it.
Each kind also keeps the builtin base its callers used to catch (``LookupError`` for
``NotFound``, ``ValueError`` for ``Invalid`` and ``Conflict``).
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A refusal the caller can act on: a stable code, a sentence, and structured details."""

    code = "refused"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        field: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = dict(details or {})
        if field is not None:
            self.details["field"] = field

    @property
    def field(self) -> str | None:
        return self.details.get("field")


class NotFound(DomainError, LookupError):
    """Nothing of that name or id in the caller's tenant (or at all: the caller cannot tell)."""

    code = "not_found"


class Conflict(DomainError, ValueError):
    """The request is well formed but clashes with the current state (taken code, wrong state)."""

    code = "conflict"


class AlreadyExists(Conflict):
    code = "already_exists"


class Invalid(DomainError, ValueError):
    """A value breaks a rule of the domain (a field, a combination of fields)."""

    code = "invalid_field"


class Forbidden(DomainError):
    """The caller is known but may not do this (role, edition, grant, allow-list)."""

    code = "forbidden"


class Unauthenticated(DomainError):
    """Who is asking is not established: wrong credentials, a missing or expired token."""

    code = "unauthorized"


class Throttled(DomainError):
    """Too many attempts; ``details["retry_after"]`` says in how many seconds to try again."""

    code = "too_many_requests"


class Unavailable(DomainError):
    """A service the request needs is out of reach (mail, SMS, the OCR engine); try later."""

    code = "unavailable"
