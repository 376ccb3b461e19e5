"""Every error the project raises about the VIS API and what it could read of it.

One module, below every other, so each layer raises and catches the same types, and a child
process can rebuild them from a pickle (each error with fields has a ``__reduce__``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

_Window = tuple[datetime, datetime]
"""A time window ``[start, end)`` of tz-aware datetimes."""


class VISError(Exception):
    """Base of every error the VIS client raises."""


class VISRetriesExhausted(VISError):
    """A request kept failing in a retryable way until its attempts or the budget ran out."""

    def __init__(
        self,
        operation: str,
        attempts: int,
        last_cause: str,
        *,
        budget_exhausted: bool = False,
        window: tuple[datetime, datetime] | None = None,
        page: int | None = None,
    ) -> None:
        self.operation = operation
        self.attempts = attempts
        self.last_cause = last_cause
        self.budget_exhausted = budget_exhausted
        self.window = window
        self.page = page
        super().__init__(self._message())

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuilt from its fields (the default would pass only the message to __init__).
        return (
            _rebuild_retries_exhausted,
            (
                self.operation,
                self.attempts,
                self.last_cause,
                self.budget_exhausted,
                self.window,
                self.page,
            ),
            self.__dict__,
        )

    def _message(self) -> str:
        where = ""
        if self.window is not None:
            where = f" for window [{self.window[0].isoformat()}, {self.window[1].isoformat()})"
        if self.page is not None:
            where += f" page {self.page}"
        why = "the client's retry budget is exhausted" if self.budget_exhausted else "giving up"
        return (
            f"{self.operation}{where} failed after {self.attempts} attempt(s); {why}; "
            f"last cause: {self.last_cause}"
        )

    def located(
        self, window: tuple[datetime, datetime], page: int | None = None
    ) -> VISRetriesExhausted:
        """The same failure, naming the window (and page) it happened in."""
        return VISRetriesExhausted(
            self.operation,
            self.attempts,
            self.last_cause,
            budget_exhausted=self.budget_exhausted,
            window=window,
            page=page,
        )


def _rebuild_retries_exhausted(
    operation: str,
    attempts: int,
    last_cause: str,
    budget_exhausted: bool,
    window: tuple[datetime, datetime] | None,
    page: int | None,
) -> VISRetriesExhausted:
    return VISRetriesExhausted(
        operation,
        attempts,
        last_cause,
        budget_exhausted=budget_exhausted,
        window=window,
        page=page,
    )


class VISTransportError(VISError):
    """An exchange failed in a way that is not safe or not useful to repeat."""


class VISAPIError(VISError):
    """The API answered with an error status."""

    def __init__(
        self,
        operation: str,
        status: int,
        error_code: str | None = None,
        error_message: str | None = None,
        errors: list[dict[str, Any]] | None = None,
    ) -> None:
        self.operation = operation
        self.status = status
        self.error_code = error_code
        self.error_message = error_message
        self.errors = errors or []
        super().__init__(self._message())

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuilt from its fields (the default would pass only the message to __init__).
        return (
            type(self),
            (self.operation, self.status, self.error_code, self.error_message, self.errors),
            self.__dict__,
        )

    def _message(self) -> str:
        text = f"{self.operation}: HTTP {self.status}"
        if self.error_code:
            text += f" {self.error_code}"
        if self.error_message:
            text += f": {self.error_message}"
        details = [
            f"{item.get('field')}: {item.get('message')}"
            for item in self.errors
            if isinstance(item, dict) and str(item.get("message")) not in text
        ]
        if details:
            text += f" ({'; '.join(details)})"
        return text


class VISBadRequest(VISAPIError):
    """400 or 422: the API refused the request's parameters or body."""


class VISNotFound(VISAPIError):
    """404: no such resource."""


class VISAuthError(VISAPIError):
    """401 or 403: the access token was rejected (expired, revoked or not allowed)."""

    def _message(self) -> str:
        return (
            f"{self.operation}: HTTP {self.status}: the access token was rejected "
            "(expired, revoked or lacking permission); not retried"
            + (f" [{self.error_code}]" if self.error_code else "")
        )


class VISTokenError(VISAuthError):
    """No access token could be had: a credential was refused, or the token source failed.

    ``credential`` names what was refused or failed (``VIS_CLIENT_SECRET``, ``the refresh
    token``, ``VIS_TOKEN_COMMAND``...), never its value; ``problem`` says what happened, in
    words the token source gave (secrets scrubbed). Never retried: the same credential would
    be refused again.
    """

    def __init__(self, credential: str, problem: str, status: int = 0) -> None:
        self.credential = credential
        self.problem = problem
        super().__init__("token", status, None, problem)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.credential, self.problem, self.status), self.__dict__)

    def _message(self) -> str:
        return f"no access token: {self.credential} {self.problem}; not retried"


class VISIncompleteWindow(VISError):
    """The events fetched for a window never matched the API's count, even piece by piece."""

    def __init__(
        self,
        window: _Window,
        api_count: int,
        distinct: int,
        detail: str = "",
        *,
        instant: datetime | None = None,
    ) -> None:
        self.window = window
        self.api_count = api_count
        self.distinct = distinct
        self.detail = detail
        self.instant = instant
        message = (
            f"window [{window[0].isoformat()}, {window[1].isoformat()}) is incomplete: the API "
            f"counts {api_count} events, {distinct} distinct were fetched"
        )
        if instant is not None:
            message += f"; the instant {_iso_ms(instant)} could not be read whole"
        super().__init__(f"{message} ({detail})" if detail else message)

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuilt from its fields (the default would pass only the message to __init__).
        return (
            _rebuild_incomplete,
            (self.window, self.api_count, self.distinct, self.detail, self.instant),
            self.__dict__,
        )


def _rebuild_incomplete(
    window: _Window, api_count: int, distinct: int, detail: str, instant: datetime | None
) -> VISIncompleteWindow:
    return VISIncompleteWindow(window, api_count, distinct, detail, instant=instant)


def _iso_ms(moment: datetime) -> str:
    """``2026-01-05T00:00:00.000Z``: the API's own spelling of an instant."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class ExtractionProcessError(VISError):
    """The extraction process failed in a way that is not one of the client's own errors."""


class VISDaysFailed(VISError):
    """Some days of a sync could not be read whole; the other days were loaded."""

    def __init__(self, failed: Sequence[tuple[date, str]]) -> None:
        self.failed = list(failed)
        day, why = self.failed[0]
        more = f" (and {len(self.failed) - 1} more day(s))" if len(self.failed) > 1 else ""
        super().__init__(f"day {day.isoformat()} failed{more}: {why}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.failed,), self.__dict__)


class WarehouseError(RuntimeError):
    """The warehouse refused an operation (a transaction was rolled back, the catalog could not
    be opened, or the location is not one the project can use)."""


class OldWarehouseFile(WarehouseError):
    """``VIS_WAREHOUSE`` names a DuckDB file, the single-file warehouse of earlier versions."""

    def __init__(self, path: Path) -> None:
        self.path = path
        super().__init__(
            f"{path.name} is a single-file warehouse of an earlier version; the warehouse is now "
            f"a DuckLake catalog (default data/warehouse.sqlite): import the file once with "
            f"`vis-pipeline warehouse import {path}` and unset VIS_WAREHOUSE or point it at "
            "the new catalog"
        )


def first_line_of(exc: BaseException) -> str:
    """The first line of an error's message (its class name when it has none): what one line
    of output says of it."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
