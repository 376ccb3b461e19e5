"""The VIS API client: one httpx client and its connection pool, typed calls, retries, windows.

Every operation of the spec has a method with a Python name; the wire names (``getRoles``,
``callUnold``...) come from the spec's operation table and stay on the wire. Answers are the
API's JSON, unchanged. The access token lives in one request header and is scrubbed from every
message this module writes. A client is safe to share between threads.
"""

from __future__ import annotations

import logging
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar, overload
from urllib.parse import quote

import httpx
import orjson

from vis_pipeline.extract import (
    PagingProfile,
    Tally,
    VISIncompleteWindow,
    WindowExtractor,
    WindowResult,
    WindowStats,
    to_epoch_ms,
)
from vis_pipeline.retry import BodyError, RetryBudget, RetryPolicy, VISError, VISRetriesExhausted
from vis_pipeline.spec import operations

_T = TypeVar("_T")

__all__ = [
    "ClientSettings",
    "VISAPIError",
    "VISAuthError",
    "VISBadRequest",
    "VISClient",
    "VISError",
    "VISIncompleteWindow",
    "VISNotFound",
    "VISRetriesExhausted",
    "VISTransportError",
    "WindowResult",
    "WindowStats",
]

LOGGER = logging.getLogger("vis_pipeline.client")

DEFAULT_PAGE_SIZE = 100
"""Events asked for per page (the server may honour fewer)."""

DEFAULT_CONCURRENCY = 8
"""Requests in flight at most, and connections kept open."""

DEFAULT_TIMEOUT = 10.0
"""Seconds allowed for each of connect, write, read and pool wait, per request."""

DEFAULT_MAX_PAGES_PER_WINDOW = 50
"""Pages one range may need before it is split in halves by time."""

DEFAULT_EDGE_MARGIN_MS = 1000
"""Milliseconds queried beyond each window edge, so either edge reading gives the same events."""

AUTH_STATUSES: frozenset[int] = frozenset({401, 403})
"""Statuses meaning the token was refused: never retried."""

BAD_REQUEST_STATUSES: frozenset[int] = frozenset({400, 422})
"""Statuses meaning the request itself is wrong: never retried."""

IDEMPOTENT_METHODS: frozenset[str] = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
"""Methods whose repetition after a lost answer does no harm."""

DEFAULT_RETRY_POLICY = RetryPolicy()
"""Retry policy of a client built without one (frozen, so one instance serves all)."""

REDACTED = "[redacted]"
"""What a secret is replaced with in any text this module produces."""

MAX_ERROR_TEXT = 300
"""Characters of an unexpected error body quoted in an exception message."""

_JSON_HEADERS = {"Content-Type": "application/json"}


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


def _error_class(status: int) -> type[VISAPIError]:
    if status in AUTH_STATUSES:
        return VISAuthError
    if status in BAD_REQUEST_STATUSES:
        return VISBadRequest
    if status == 404:
        return VISNotFound
    return VISAPIError


def scrub_secrets(text: str, secrets: Iterable[str]) -> str:
    """``text`` without any secret, also in the escaped spellings repr() gives them."""
    for secret in secrets:
        if not secret:
            continue
        spellings = {secret, repr(secret)[1:-1], repr(secret.encode("utf-8", "replace"))[2:-1]}
        for spelling in sorted(spellings, key=len, reverse=True):
            text = text.replace(spelling, REDACTED)
    return text


def _describe(exc: BaseException) -> str:
    detail = str(exc)
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__


def _ms_param(value: int | datetime | None, name: str) -> int | None:
    if value is None or isinstance(value, int):
        return value
    return to_epoch_ms(value, name=name)


def _csv_param(value: str | Iterable[str] | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return ",".join(value)


def _filters(
    from_date: int | datetime | None,
    to_date: int | datetime | None,
    direction: str | Iterable[str] | None,
    states: str | Iterable[str] | None,
) -> dict[str, Any]:
    """The query filters shared by the call and event listings and their counts."""
    return {
        "fromDate": _ms_param(from_date, "from_date"),
        "toDate": _ms_param(to_date, "to_date"),
        "direction": _csv_param(direction),
        "states": _csv_param(states),
    }


def _plain_word(value: str) -> str:
    """``value`` when it can go into a query string as it is (letters only), else ValueError."""
    if not (value.isascii() and value.isalpha()):
        raise ValueError(f"not a plain word: {value!r}")
    return value


def _query(**values: Any) -> dict[str, Any]:
    return {name: value for name, value in values.items() if value is not None}


@dataclass(frozen=True)
class ClientSettings:
    """Everything it takes to build the same client in another process (token included).

    The token is left out of the repr; the object crosses to a child process through a pipe,
    never through a command line or the environment. The client built from it has a retry
    budget of its own.
    """

    base_url: str
    token: str = field(repr=False)
    page_size: int = DEFAULT_PAGE_SIZE
    concurrency: int = DEFAULT_CONCURRENCY
    timeout: float = DEFAULT_TIMEOUT
    retry: RetryPolicy = DEFAULT_RETRY_POLICY
    max_pages_per_window: int = DEFAULT_MAX_PAGES_PER_WINDOW
    edge_margin_ms: int = DEFAULT_EDGE_MARGIN_MS

    def client(self) -> VISClient:
        """A new client with these settings."""
        return VISClient(
            self.base_url,
            self.token,
            page_size=self.page_size,
            concurrency=self.concurrency,
            timeout=self.timeout,
            retry=self.retry,
            max_pages_per_window=self.max_pages_per_window,
            edge_margin_ms=self.edge_margin_ms,
        )


class VISClient:
    """A client for the VIS API; use as a context manager or call :meth:`close`."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        page_size: int = DEFAULT_PAGE_SIZE,
        concurrency: int = DEFAULT_CONCURRENCY,
        timeout: float = DEFAULT_TIMEOUT,
        retry: RetryPolicy = DEFAULT_RETRY_POLICY,
        max_pages_per_window: int = DEFAULT_MAX_PAGES_PER_WINDOW,
        edge_margin_ms: int = DEFAULT_EDGE_MARGIN_MS,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not (token.isascii() and token.isprintable()):
            # Said without the token: it must not reach any message.
            raise ValueError("the access token holds characters an HTTP header cannot carry")
        self._base_url = base_url.rstrip("/")
        self._secrets: tuple[str, ...] = (token,) if token else ()
        # A client on a transport of its caller's, or retrying with a clock or randomness of
        # its caller's, would not behave the same if rebuilt in another process.
        self._settings = (
            None
            if transport is not None or not retry.portable
            else ClientSettings(
                self._base_url,
                token,
                page_size=page_size,
                concurrency=concurrency,
                timeout=timeout,
                retry=retry,
                max_pages_per_window=max_pages_per_window,
                edge_margin_ms=edge_margin_ms,
            )
        )
        self._retry = retry
        self._budget: RetryBudget = retry.new_budget()
        self._operations = operations()
        # Checks the numbers before any connection exists.
        self._extractor = WindowExtractor(
            self,
            page_size=page_size,
            concurrency=concurrency,
            max_pages_per_window=max_pages_per_window,
            edge_margin_ms=edge_margin_ms,
        )
        # Every request of an extraction runs on a pool of ``concurrency`` threads.
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        self._headers = {
            "Authorization": f"Bearer {token}",
            "Accept": "application/json",
            "Accept-Encoding": "gzip, deflate",
        }
        client_timeout = httpx.Timeout(timeout)
        self._extensions = {"timeout": client_timeout.as_dict()}
        self._direct: httpx.BaseTransport | None = None
        if transport is None and _proxied(self._base_url):
            # httpx applies the environment's proxy only to a client that builds its own pool.
            self._http = httpx.Client(headers=self._headers, timeout=client_timeout, limits=limits)
        else:
            # Requests go straight to the client's pool: the client's per-request machinery
            # (auth flow, redirects, cookies, hooks) costs more than parsing a page does.
            # Plain http needs no TLS context; building the default one reads the whole CA
            # bundle (about 0.1 s), which a client started per sync should not pay for nothing.
            tls = httpx.URL(self._base_url).scheme == "https"
            self._direct = transport or httpx.HTTPTransport(limits=limits, verify=tls)
            self._http = httpx.Client(
                headers=self._headers, timeout=client_timeout, transport=self._direct
            )

    # -- lifecycle -------------------------------------------------------------------------

    def __enter__(self) -> VISClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the worker threads and close the connections."""
        self._extractor.close()
        self._http.close()

    def __repr__(self) -> str:
        return f"VISClient(base_url={self._base_url!r})"

    @property
    def base_url(self) -> str:
        """The API's base URL."""
        return self._base_url

    @property
    def settings(self) -> ClientSettings | None:
        """How to build this client again elsewhere; None when it runs on a caller's transport."""
        return self._settings

    @property
    def retry_budget(self) -> RetryBudget:
        """The retries this client has left."""
        return self._budget

    @property
    def paging_profile(self) -> PagingProfile | None:
        """How the server was found to page (None before the first non-empty window)."""
        return self._extractor.profile

    # -- transport -------------------------------------------------------------------------

    def _call(
        self,
        operation: str,
        *,
        resource_id: int | str | None = None,
        params: dict[str, Any] | None = None,
        query: str | None = None,
        body: dict[str, Any] | None = None,
        expect: type | None = dict,
        tally: Tally | None = None,
        secrets: tuple[str, ...] = (),
    ) -> Any:
        """Send one operation (retrying what is worth retrying) and return its parsed body."""
        method, template = self._operations[operation]
        path = template
        if resource_id is not None:
            path = path.replace("{id}", quote(str(resource_id), safe=""))
        # An absolute URL is parsed once; a relative one would be parsed again to merge it.
        url = httpx.URL(f"{self._base_url}{path}?{query}" if query else self._base_url + path)
        content = orjson.dumps(body) if body is not None else None
        headers = _JSON_HEADERS if content is not None else None
        secrets = self._secrets + tuple(s for s in secrets if s)
        idempotent = method in IDEMPOTENT_METHODS
        policy = self._retry
        attempt = 0
        while True:
            attempt += 1
            self._budget.record_request()
            if tally is not None:
                tally.add_request()
            retry_after: str | None = None
            failure: Exception | None = None
            try:
                response = self._send(method, url, params, content, headers)
                LOGGER.debug("%s %s: HTTP %d", method, url, response.status_code)
                if response.status_code < 300:
                    return _decode(response, expect)
            except Exception as exc:
                failure = exc
            # Raised outside the handler and never chained: the raw exception's text may hold
            # what was sent (httpx quotes a refused header value whole).
            if failure is not None:
                cause = scrub_secrets(_describe(failure), secrets)
                if not policy.retries_exception(failure, idempotent=idempotent):
                    raise VISTransportError(f"{operation}: {cause}; not retried") from None
            else:
                status = response.status_code
                if not policy.retries_status(status):
                    raise _api_error(operation, response, secrets)
                cause = f"HTTP {status}"
                retry_after = response.headers.get("Retry-After")
            if attempt >= policy.max_attempts:
                raise VISRetriesExhausted(operation, attempt, cause) from None
            if not self._budget.try_spend():
                raise VISRetriesExhausted(
                    operation, attempt, cause, budget_exhausted=True
                ) from None
            if tally is not None:
                tally.add_retry()
            delay = policy.delay_for(attempt, retry_after)
            LOGGER.info(
                "%s: %s on attempt %d/%d; retrying in %.2f s",
                operation,
                cause,
                attempt,
                policy.max_attempts,
                delay,
            )
            policy.sleep(delay)

    def _send(
        self,
        method: str,
        url: httpx.URL,
        params: dict[str, Any] | None,
        content: bytes | None,
        headers: dict[str, str] | None,
    ) -> httpx.Response:
        """One exchange, its body read in full, with the client's headers and timeout."""
        if self._direct is None:
            return self._http.request(method, url, params=params, content=content, headers=headers)
        request = httpx.Request(
            method,
            url,
            params=params,
            content=content,
            headers={**self._headers, **headers} if headers else self._headers,
            extensions=self._extensions,
        )
        response = self._direct.handle_request(request)
        try:
            response.read()
        finally:
            response.close()
        return response

    # -- window extraction -----------------------------------------------------------------

    def count_range(
        self, from_ms: int, to_ms: int, tally: Tally | None = None, *, direction: str | None = None
    ) -> int:
        """getEventsCount over ``(from_ms, to_ms)`` as an int (edges read as the server does)."""
        query = f"fromDate={int(from_ms)}&toDate={int(to_ms)}"
        if direction is not None:
            query += f"&direction={_plain_word(direction)}"
        body = self._call("getEventsCount", query=query, tally=tally)
        count = body.get("count")
        if type(count) is not int or count < 0:
            raise VISTransportError(f"getEventsCount: answer without a usable count: {count!r}")
        return count

    def fetch_page(
        self,
        from_ms: int,
        to_ms: int,
        page: int,
        size: int,
        tally: Tally | None = None,
        *,
        probe: bool = False,
        order: str = "ASC",
        sort: str = "startTime",
        direction: str | None = None,
    ) -> list[Any] | None:
        """One listEvents page; a probe returns None when the page is refused (a 400)."""
        # Built by hand: this is the hot request, and every value is a plain integer or word.
        query = (
            f"fromDate={int(from_ms)}&toDate={int(to_ms)}&offset={int(page)}&size={int(size)}"
            f"&order={_plain_word(order)}&sort={_plain_word(sort)}"
        )
        if direction is not None:
            query += f"&direction={_plain_word(direction)}"
        try:
            records = self._call("listEvents", query=query, expect=list, tally=tally)
        except VISBadRequest:
            if probe:
                return None
            raise
        if tally is not None:
            tally.add_page(len(records))
        return records

    def count_window(self, start: datetime, end: datetime) -> int:
        """The API's count over the window's margin range: what an extraction checks against."""
        return self._extractor.count_window(start, end)

    def count_windows(self, windows: Iterable[tuple[datetime, datetime]]) -> list[int]:
        """``count_window`` of each window, asked concurrently (at most ``concurrency`` at once)."""
        return self._extractor.count_windows(windows)

    def extract_window(self, start: datetime, end: datetime) -> WindowResult:
        """Every event of ``[start, end)``, checked against the API's count."""
        return self._extractor.extract(start, end)

    @overload
    def iter_windows(
        self, windows: Iterable[tuple[datetime, datetime]]
    ) -> Iterator[WindowResult]: ...

    @overload
    def iter_windows(
        self,
        windows: Iterable[tuple[datetime, datetime]],
        then: Callable[[WindowResult], _T],
    ) -> Iterator[_T]: ...

    def iter_windows(
        self,
        windows: Iterable[tuple[datetime, datetime]],
        then: Callable[[WindowResult], Any] | None = None,
    ) -> Iterator[Any]:
        """Each window's result in order; the next window is fetched while the caller works.

        ``then`` runs on the extraction thread as each window completes, and what it returns is
        yielded instead of the result (the sync normalises there, off the loading thread).
        """
        if then is None:
            return self._extractor.iter_windows(windows)
        return self._extractor.iter_windows(windows, then)

    def iter_events(
        self, start: datetime, end: datetime, window: timedelta = timedelta(days=1)
    ) -> Iterator[dict[str, Any]]:
        """Every valid event of ``[start, end)``, fetched ``window`` at a time."""
        return self._extractor.iter_events(start, end, window)

    # -- users and account -----------------------------------------------------------------

    def get_user(self) -> dict[str, Any]:
        """The user the token belongs to (getUser)."""
        return self._call("getUser")

    def get_account(self) -> dict[str, Any]:
        """The user's account (getAccount)."""
        return self._call("getAccount")

    # -- calls -----------------------------------------------------------------------------

    def list_calls(
        self,
        *,
        from_date: int | datetime | None = None,
        to_date: int | datetime | None = None,
        direction: str | Iterable[str] | None = None,
        states: str | Iterable[str] | None = None,
        offset: int | None = None,
        size: int | None = None,
        order: str | None = None,
        sort: str | None = None,
    ) -> list[dict[str, Any]]:
        """Calls of the user (listCalls); dates are epoch ms or aware datetimes."""
        params = _query(
            **_filters(from_date, to_date, direction, states),
            offset=offset,
            size=size,
            order=order,
            sort=sort,
        )
        return self._call("listCalls", params=params, expect=list)

    def create_call(self, phone_number: str) -> list[dict[str, Any]]:
        """Place a call to ``phone_number`` (createCall)."""
        return self._call("createCall", body={"phoneNumber": phone_number}, expect=list)

    def get_calls_count(
        self,
        *,
        from_date: int | datetime | None = None,
        to_date: int | datetime | None = None,
        direction: str | Iterable[str] | None = None,
        states: str | Iterable[str] | None = None,
    ) -> dict[str, Any]:
        """How many calls match (getCallsCount): ``{"count": n}``."""
        params = _query(
            **_filters(from_date, to_date, direction, states),
        )
        return self._call("getCallsCount", params=params)

    def destroy_call(self, call_id: int | str) -> list[dict[str, Any]]:
        """Hang up a call (destroyCall)."""
        return self._call("destroyCall", resource_id=call_id, expect=list)

    def get_call(self, call_id: int | str) -> list[dict[str, Any]]:
        """One call, as the API's one-element array (wire operation getRoles)."""
        return self._call("getRoles", resource_id=call_id, expect=list)

    def answer_call(self, call_id: int | str) -> dict[str, Any]:
        """Answer a ringing call (callAnswer)."""
        return self._call("callAnswer", resource_id=call_id)

    def hold_call(self, call_id: int | str) -> dict[str, Any]:
        """Put a call on hold (callHold)."""
        return self._call("callHold", resource_id=call_id)

    def unhold_call(self, call_id: int | str) -> dict[str, Any]:
        """Take a call off hold (wire operation callUnold)."""
        return self._call("callUnold", resource_id=call_id)

    def transfer_call(self, call_id: int | str, phone_number: str) -> dict[str, Any]:
        """Transfer a call to ``phone_number`` (callTransfer)."""
        return self._call("callTransfer", resource_id=call_id, body={"phoneNumber": phone_number})

    def transfer_call_to_voicemail(self, call_id: int | str) -> dict[str, Any]:
        """Send a call to voicemail (callVMTransfer)."""
        return self._call("callVMTransfer", resource_id=call_id)

    # -- events ----------------------------------------------------------------------------

    def list_events(
        self,
        *,
        from_date: int | datetime | None = None,
        to_date: int | datetime | None = None,
        types: str | Iterable[str] | None = None,
        direction: str | Iterable[str] | None = None,
        states: str | Iterable[str] | None = None,
        offset: int | None = None,
        size: int | None = None,
        order: str | None = None,
        sort: str | None = None,
    ) -> list[dict[str, Any]]:
        """One page of events (listEvents); ``offset`` is a page number."""
        params = _query(
            types=_csv_param(types),
            **_filters(from_date, to_date, direction, states),
            offset=offset,
            size=size,
            order=order,
            sort=sort,
        )
        return self._call("listEvents", params=params, expect=list)

    def get_events_count(
        self,
        *,
        from_date: int | datetime | None = None,
        to_date: int | datetime | None = None,
        direction: str | Iterable[str] | None = None,
        states: str | Iterable[str] | None = None,
    ) -> dict[str, Any]:
        """How many events match (getEventsCount): ``{"count": n}``."""
        params = _query(
            **_filters(from_date, to_date, direction, states),
        )
        return self._call("getEventsCount", params=params)

    def get_event(self, event_id: int | str) -> dict[str, Any]:
        """One event (getEvent); the API wraps it in an array, this returns the event itself."""
        body = self._call("getEvent", resource_id=event_id, expect=list)
        if not body:
            raise VISNotFound("getEvent", 200, None, f"no event {event_id} in the answer")
        return body[0]

    # -- webhooks --------------------------------------------------------------------------

    def list_webhooks(self) -> list[dict[str, Any]]:
        """The user's webhooks (listWebhooks)."""
        return self._call("listWebhooks", expect=list)

    def create_webhook(
        self,
        url: str,
        *,
        events: Iterable[str] = ("CALL",),
        signing_key: str | None = None,
        signing_algo: str | None = "HMAC_SHA256",
        metadata_policy: str | None = None,
    ) -> dict[str, Any]:
        """Register a webhook (createWebhook); the signing key is kept out of every message."""
        body = _query(
            url=url,
            events=list(events),
            signingAlgo=signing_algo if signing_key is not None else None,
            signingKey=signing_key,
            metadataPolicy=metadata_policy,
        )
        secrets = (signing_key,) if signing_key else ()
        return self._call("createWebhook", body=body, secrets=secrets)

    def destroy_webhook(self, webhook_id: int | str) -> None:
        """Delete a webhook (destroyWebhook)."""
        self._call("destroyWebhook", resource_id=webhook_id, expect=None)

    def view_webhook(self, webhook_id: int | str) -> dict[str, Any]:
        """One webhook (viewWebhook)."""
        return self._call("viewWebhook", resource_id=webhook_id)

    def renew_webhook(self, webhook_id: int | str) -> dict[str, Any]:
        """Extend a webhook's life and clear its failed flag (renewWebhook)."""
        return self._call("renewWebhook", resource_id=webhook_id)


def _proxied(base_url: str) -> bool:
    """Whether the environment sends ``base_url`` through a proxy (read as httpx reads it)."""
    url = httpx.URL(base_url)
    proxies = urllib.request.getproxies()
    if not (proxies.get(url.scheme) or proxies.get("all")):
        return False
    return not urllib.request.proxy_bypass(url.host)


def _decode(response: httpx.Response, expect: type | None) -> Any:
    """The parsed body of a success answer; BodyError when it is not the JSON expected."""
    content = response.content
    if expect is None:
        return None
    try:
        data = orjson.loads(content)
    except orjson.JSONDecodeError:
        raise BodyError(f"unparsable body ({len(content)} bytes)") from None
    if not isinstance(data, expect):
        raise BodyError(f"expected a JSON {expect.__name__}, got {type(data).__name__}")
    return data


def _api_error(operation: str, response: httpx.Response, secrets: tuple[str, ...]) -> VISAPIError:
    """The typed error for an error answer, with the API's errorCode/errorMessage when given."""
    code: str | None = None
    message: str | None = None
    errors: list[dict[str, Any]] = []
    content = response.content
    if content:
        try:
            body = orjson.loads(content)
        except orjson.JSONDecodeError:
            body = None
            message = content[:MAX_ERROR_TEXT].decode("utf-8", "replace")
        if isinstance(body, dict):
            code = _text(body.get("errorCode"))
            message = _text(body.get("errorMessage"))
            raw_errors = body.get("errors")
            if isinstance(raw_errors, list):
                errors = [
                    {key: scrub_secrets(str(value), secrets) for key, value in item.items()}
                    for item in raw_errors
                    if isinstance(item, dict)
                ]
    return _error_class(response.status_code)(
        operation,
        response.status_code,
        scrub_secrets(code, secrets) if code else None,
        scrub_secrets(message, secrets) if message else None,
        errors,
    )


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
