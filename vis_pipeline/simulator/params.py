"""Query parameters of the listing operations, checked the way the spec types them.

Bad values are answered with an ErrorResponse: 400 for a value of the wrong type or outside
its enum, 422 for a window whose start is after its end.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import orjson

from vis_pipeline.records import DIRECTIONS, LIVE_STATES, RECORD_TYPES, STATES

DEFAULT_PAGE_SIZE = 20
"""Page size when the request gives none (per the spec)."""

MAX_PAGE_SIZE = 1000
"""Largest page the server hands out; larger sizes are capped silently."""

ORDERS: frozenset[str] = frozenset({"ASC", "DESC"})
"""Sort orders the spec knows."""

SORT_PROPERTIES: tuple[str, ...] = (
    "startTime",
    "id",
    "endTime",
    "answerTime",
    "duration",
    "userId",
    "accountId",
    "uciId",
    "direction",
    "state",
    "phoneNumber",
    "callerId",
    "externalId",
    "type",
)
"""Record properties a listing can be sorted by."""


class ApiError(Exception):
    """A request the API refuses, with the ErrorResponse to send (or no body)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        field: str | None = None,
        with_body: bool = True,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.with_body = with_body

    def body(self) -> bytes | None:
        """The ErrorResponse bytes, or None for a status the spec sends without a body."""
        if not self.with_body:
            return None
        errors = [{"field": self.field, "message": self.message}] if self.field else []
        return orjson.dumps(
            {"errorCode": self.code, "errorMessage": self.message, "errors": errors}
        )


def bad_parameter(name: str, message: str) -> ApiError:
    """A 400 for query parameter ``name``."""
    return ApiError(400, "INVALID_PARAMETER", f"{name}: {message}", field=name)


def parse_query(query_string: bytes) -> dict[str, str]:
    """Query parameters by name; a repeated parameter's values are joined with commas."""
    params: dict[str, str] = {}
    if not query_string:
        return params
    for name, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        params[name] = f"{params[name]},{value}" if name in params else value
    return params


def integer(params: dict[str, str], name: str) -> int | None:
    """Integer parameter ``name``, or None when absent."""
    text = params.get(name)
    if text is None:
        return None
    body = text[1:] if text[:1] in "+-" else text
    if not body.isascii() or not body.isdigit():
        raise bad_parameter(name, f"expected an integer, got {text!r}")
    return int(text)


def enum_set(params: dict[str, str], name: str, known: frozenset[str]) -> frozenset[str] | None:
    """Comma-separated enum values of parameter ``name``, or None when absent or empty."""
    text = params.get(name)
    if not text:
        return None
    values = frozenset(part.strip() for part in text.split(",") if part.strip())
    unknown = sorted(values - known)
    if unknown:
        raise bad_parameter(name, f"unknown values {unknown}; expected some of {sorted(known)}")
    return values or None


@dataclass(frozen=True)
class ListQuery:
    """A checked listing request: window, filters, order and page."""

    from_ms: int | None
    to_ms: int | None
    types: frozenset[str] | None
    directions: frozenset[str] | None
    states: frozenset[str] | None
    order: str = "ASC"
    sort: str = "startTime"
    offset: int | None = None
    size: int = DEFAULT_PAGE_SIZE

    @property
    def filtered(self) -> bool:
        """Whether any filter narrows the window."""
        return bool(self.types or self.directions or self.states)


def list_query(
    params: dict[str, str],
    *,
    calls: bool = False,
    paged: bool = True,
) -> ListQuery:
    """The listing request in ``params``; ``calls`` for the live-call endpoints."""
    from_ms, to_ms = integer(params, "fromDate"), integer(params, "toDate")
    if from_ms is not None and to_ms is not None and from_ms > to_ms:
        raise ApiError(
            422, "INVALID_RANGE", f"fromDate ({from_ms}) is after toDate ({to_ms})", "fromDate"
        )
    states = enum_set(params, "states", LIVE_STATES if calls else STATES)
    if calls and states is None:
        states = frozenset({"ACTIVE"})
    query = ListQuery(
        from_ms=from_ms,
        to_ms=to_ms,
        types=enum_set(params, "types", RECORD_TYPES),
        directions=enum_set(params, "direction", DIRECTIONS),
        states=states,
    )
    if not paged:
        return query
    return _paged(query, params)


def _paged(query: ListQuery, params: dict[str, str]) -> ListQuery:
    """``query`` with its order, sort and page read from ``params``."""
    order = params.get("order", "ASC")
    if order not in ORDERS:
        raise bad_parameter("order", f"expected ASC or DESC, got {order!r}")
    sort = params.get("sort") or "startTime"
    if sort not in SORT_PROPERTIES:
        raise bad_parameter("sort", f"unknown property {sort!r}; known: {list(SORT_PROPERTIES)}")
    size = integer(params, "size")
    if size is not None and size <= 0:
        raise bad_parameter("size", f"must be positive, got {size}")
    return ListQuery(
        from_ms=query.from_ms,
        to_ms=query.to_ms,
        types=query.types,
        directions=query.directions,
        states=query.states,
        order=order,
        sort=sort,
        offset=integer(params, "offset"),
        size=DEFAULT_PAGE_SIZE if size is None else size,
    )


def json_body(raw: bytes) -> Any:
    """The request body parsed as JSON (400 when it is not JSON)."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise ApiError(400, "INVALID_BODY", "the request body is not valid JSON", "body") from None


def required_string(body: Any, name: str) -> str:
    """Field ``name`` of a JSON object body, which must be a non-empty string (else 422)."""
    value = body.get(name) if isinstance(body, dict) else None
    if not isinstance(value, str) or not value:
        raise ApiError(422, "VALIDATION_ERROR", f"{name}: required, a non-empty string", name)
    return value
