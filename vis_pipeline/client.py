"""The VIS API client: one httpx client and its connection pool, typed calls, retries.

Every operation of the spec has a method with a Python name; the wire names (``getRoles``,
``callUnold``...) come from the spec's operation table and stay on the wire. Answers are the
API's JSON, unchanged. The access token lives in one request header and is scrubbed from every
message this module writes. Tokens come from a provider (``vis_pipeline.auth``): a request
refused with a 401 is sent once more with a renewed token, if the provider has a newer one.
A client is safe to share between threads. What to ask for, window by window, is the
extraction's business (``vis_pipeline.extract``), not the client's.
"""

from __future__ import annotations

import logging
import threading
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx
import orjson

from vis_pipeline.auth import (
    StaticToken,
    TokenProvider,
    scrub_secrets,
    secrets_of,
    token_provider,
)
from vis_pipeline.errors import (
    VISAPIError,
    VISAuthError,
    VISBadRequest,
    VISNotFound,
    VISRetriesExhausted,
    VISTransportError,
)
from vis_pipeline.records import to_epoch_ms
from vis_pipeline.retry import BodyError, RetryBudget, RetryPolicy
from vis_pipeline.settings import DEFAULTS, Settings
from vis_pipeline.spec import operations

LOGGER = logging.getLogger("vis_pipeline.client")

AUTH_STATUSES: frozenset[int] = frozenset({401, 403})
"""Statuses meaning the token was refused: never retried."""

BAD_REQUEST_STATUSES: frozenset[int] = frozenset({400, 422})
"""Statuses meaning the request itself is wrong: never retried."""

IDEMPOTENT_METHODS: frozenset[str] = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
"""Methods whose repetition after a lost answer does no harm."""

DEFAULT_RETRY_POLICY = RetryPolicy()
"""Retry policy of a client built without one (frozen, so one instance serves all)."""

_QUERY_SAFE = ",-_.~"
"""Characters a query value keeps as they are (the spec's lists are comma-separated)."""

MAX_ERROR_TEXT = 300
"""Characters of an unexpected error body quoted in an exception message."""

_JSON_HEADERS = {"Content-Type": "application/json"}


class Tally:
    """Requests, retries and pages spent on one piece of work (thread-safe)."""

    __slots__ = ("_lock", "fetched", "pages", "requests", "retries")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests = 0
        self.retries = 0
        self.pages = 0
        self.fetched = 0

    def add_request(self) -> None:
        """Count one HTTP request sent (retries included)."""
        with self._lock:
            self.requests += 1

    def add_retry(self) -> None:
        """Count one repeated request."""
        with self._lock:
            self.retries += 1

    def add_page(self, records: int) -> None:
        """Count one page received with ``records`` records."""
        with self._lock:
            self.pages += 1
            self.fetched += records


def _error_class(status: int) -> type[VISAPIError]:
    if status in AUTH_STATUSES:
        return VISAuthError
    if status in BAD_REQUEST_STATUSES:
        return VISBadRequest
    if status == 404:
        return VISNotFound
    return VISAPIError


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


def _query_string(**values: Any) -> str:
    """The query string of the values that are set, built by hand: it is the hot path of every
    page, and httpx's own parameter handling costs more than the page's parsing."""
    return "&".join(
        f"{name}={value}" if type(value) is int else f"{name}={quote(str(value), safe=_QUERY_SAFE)}"
        for name, value in values.items()
        if value is not None
    )


def _query(**values: Any) -> dict[str, Any]:
    return {name: value for name, value in values.items() if value is not None}


@dataclass(frozen=True)
class ClientSettings:
    """Everything it takes to build the same client in another process (credentials included).

    ``token`` is a static token, or the provider the client's tokens come from (pickled as its
    configuration and the access token it holds, see ``vis_pipeline.auth``). It is left out of
    the repr; the object crosses to a child process through a pipe, never through a command
    line or the environment. The clients built from it share its provider, and each has a retry
    budget of its own.
    """

    base_url: str
    token: str | TokenProvider = field(repr=False)
    concurrency: int = DEFAULTS.concurrency
    timeout: float = DEFAULTS.timeout_seconds
    retry: RetryPolicy = DEFAULT_RETRY_POLICY

    @classmethod
    def from_settings(
        cls, settings: Settings, provider: TokenProvider | None = None
    ) -> ClientSettings:
        """The client the project's settings describe (with ``provider``, when given, rather
        than a new one: clients that share a provider share its tokens)."""
        return cls(
            settings.base_url,
            provider or token_provider(settings),
            concurrency=settings.concurrency,
            timeout=settings.timeout_seconds,
            retry=RetryPolicy(max_attempts=settings.max_retries + 1),
        )

    def secrets(self) -> tuple[str, ...]:
        """The secrets these settings hold now (credentials and tokens), to keep out of text."""
        return secrets_of(self.token)

    def client(self) -> VISClient:
        """A new client with these settings."""
        return VISClient(
            self.base_url,
            self.token,
            concurrency=self.concurrency,
            timeout=self.timeout,
            retry=self.retry,
        )


class VISClient:
    """A client for the VIS API; use as a context manager or call :meth:`close`."""

    def __init__(
        self,
        base_url: str,
        token: str | TokenProvider,
        *,
        concurrency: int = DEFAULTS.concurrency,
        timeout: float = DEFAULTS.timeout_seconds,
        retry: RetryPolicy = DEFAULT_RETRY_POLICY,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if isinstance(token, str) and not (token.isascii() and token.isprintable()):
            # Said without the token: it must not reach any message.
            raise ValueError("the access token holds characters an HTTP header cannot carry")
        if concurrency < 1 or not timeout > 0:
            raise ValueError(
                f"concurrency must be >= 1 and timeout > 0, got {concurrency}, {timeout}"
            )
        self._base_url = base_url.rstrip("/")
        self._auth: TokenProvider = StaticToken(token) if isinstance(token, str) else token
        # A client on a transport of its caller's, or retrying with a clock or randomness of
        # its caller's, would not behave the same if rebuilt in another process.
        self._settings = (
            None
            if transport is not None or not retry.portable
            else ClientSettings(
                self._base_url, token, concurrency=concurrency, timeout=timeout, retry=retry
            )
        )
        self._retry = retry
        self._budget: RetryBudget = retry.new_budget()
        self._operations = operations()
        # An extraction sends at most ``concurrency`` requests at once: one connection each.
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        self._headers = {"Accept": "application/json", "Accept-Encoding": "gzip, deflate"}
        # The headers of the last token seen: a tuple swapped whole, read without a lock.
        self._token_headers: tuple[str, dict[str, str]] = ("", self._headers)
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
        """Close the connections."""
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
        """Send one operation (retrying what is worth retrying) and return its parsed body.

        A 401 is answered once with a renewed token, when the provider has a newer one than
        the request carried: of many requests refused for the same expired token, the first
        renews it and the others are sent again with its result.
        """
        method, template = self._operations[operation]
        path = template
        if resource_id is not None:
            path = path.replace("{id}", quote(str(resource_id), safe=""))
        # An absolute URL is parsed once; a relative one would be parsed again to merge it.
        url = httpx.URL(f"{self._base_url}{path}?{query}" if query else self._base_url + path)
        content = orjson.dumps(body) if body is not None else None
        headers = _JSON_HEADERS if content is not None else None
        extra = tuple(s for s in secrets if s)
        idempotent = method in IDEMPOTENT_METHODS
        policy = self._retry
        attempt = 0
        renewed = False
        while True:
            attempt += 1
            # Outside the handler below: a token that cannot be had is never retried here.
            token = self._auth.token()
            self._budget.record_request()
            if tally is not None:
                tally.add_request()
            retry_after: str | None = None
            failure: Exception | None = None
            try:
                response = self._send(method, url, params, content, headers, token)
                LOGGER.debug("%s %s: HTTP %d", method, url, response.status_code)
                if response.status_code < 300:
                    return _decode(response, expect)
            except Exception as exc:
                failure = exc
            # Raised outside the handler and never chained: the raw exception's text may hold
            # what was sent (httpx quotes a refused header value whole).
            if failure is not None:
                cause = scrub_secrets(_describe(failure), self._auth.secrets() + extra)
                if not policy.retries_exception(failure, idempotent=idempotent):
                    raise VISTransportError(f"{operation}: {cause}; not retried") from None
            else:
                status = response.status_code
                if status == 401 and not renewed and self._auth.refresh(token) != token:
                    # The token ran out under this request: the same attempt, once more.
                    renewed = True
                    attempt -= 1
                    LOGGER.info("%s: HTTP 401; sending it again with a renewed token", operation)
                    continue
                if not policy.retries_status(status):
                    raise _api_error(operation, response, self._auth.secrets() + extra)
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
        token: str,
    ) -> httpx.Response:
        """One exchange, its body read in full, with the client's headers, ``token`` and
        timeout."""
        common = self._headers_for(token)
        if self._direct is None:
            merged = {**common, **headers} if headers else common
            return self._http.request(method, url, params=params, content=content, headers=merged)
        request = httpx.Request(
            method,
            url,
            params=params,
            content=content,
            headers={**common, **headers} if headers else common,
            extensions=self._extensions,
        )
        response = self._direct.handle_request(request)
        try:
            response.read()
        finally:
            response.close()
        return response

    def _headers_for(self, token: str) -> dict[str, str]:
        """The client's headers with ``token``, built once per token rather than per request."""
        known, headers = self._token_headers
        if known == token:
            return headers
        headers = {**self._headers, "Authorization": f"Bearer {token}"}
        self._token_headers = (token, headers)
        return headers

    # -- operations ------------------------------------------------------------------------

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
        tally: Tally | None = None,
    ) -> list[Any]:
        """One page of events (listEvents); ``offset`` is a page number.

        The records come as the API sent them: the extraction judges which are valid events.
        """
        query = _query_string(
            types=_csv_param(types),
            **_filters(from_date, to_date, direction, states),
            offset=offset,
            size=size,
            order=order,
            sort=sort,
        )
        records: list[Any] = self._call("listEvents", query=query, expect=list, tally=tally)
        if tally is not None:
            tally.add_page(len(records))
        return records

    def get_events_count(
        self,
        *,
        from_date: int | datetime | None = None,
        to_date: int | datetime | None = None,
        direction: str | Iterable[str] | None = None,
        states: str | Iterable[str] | None = None,
        tally: Tally | None = None,
    ) -> dict[str, Any]:
        """How many events match (getEventsCount): ``{"count": n}``."""
        query = _query_string(**_filters(from_date, to_date, direction, states))
        return self._call("getEventsCount", query=query, tally=tally)  # type: ignore[no-any-return]

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
