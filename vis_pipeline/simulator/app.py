"""The simulator as a raw ASGI application: routing, auth, faults, tokens, control endpoints.

No web framework: the hot path (a page of events) is a dict lookup, a token comparison,
two ``bisect`` calls and one ``join``.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

from vis_pipeline.simulator.behaviour import STATUS_FAULTS, Behaviour
from vis_pipeline.simulator.control import CONTROL_PREFIX, ROUTES
from vis_pipeline.simulator.operations import HANDLERS
from vis_pipeline.simulator.params import ApiError, parse_query
from vis_pipeline.simulator.state import SimulatorState
from vis_pipeline.simulator.tokens import TOKEN_PATH
from vis_pipeline.spec import API_BASE_PATH, operations

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

CLIENT_GONE_STATUS = 499
"""Status under which a request is counted when its client hung up before the answer."""

UNKNOWN_OPERATION = "unknown"
"""Operation name under which requests to paths the API lacks are counted."""

MAX_BODY_BYTES = 64 * 1024 * 1024
"""Largest request body accepted (injected record batches can be large)."""

GARBAGE_BODY = b'{"id": 4711, "type": "CALL", "state": "ANSW\xff\xfe<html>Bad Gateway</html>'
"""What a garbage response carries: the start of a record, then bytes that are not JSON."""

_JSON_TYPE = (b"content-type", b"application/json")

log = logging.getLogger(__name__)


class SimulatorApp:
    """ASGI application serving the VIS API and the control endpoints from one state."""

    def __init__(self, state: SimulatorState) -> None:
        self.state = state
        self._expected_auth = b"Bearer " + state.options.token.encode("utf-8")
        self._static: dict[tuple[str, str], str] = {}
        self._templates: list[tuple[str, tuple[str, ...], str]] = []
        for operation_id, (method, path) in operations().items():
            if "{" in path:
                self._templates.append((method, tuple(path.split("/")), operation_id))
            else:
                self._static[(method, path)] = operation_id
        self._static_paths = {path for (_method, path) in self._static}

    def __repr__(self) -> str:
        return f"SimulatorApp(operations={len(self._static) + len(self._templates)})"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        if path.startswith(API_BASE_PATH):
            await self._api(scope, receive, send, path[len(API_BASE_PATH) :])
        elif path == CONTROL_PREFIX or path.startswith(CONTROL_PREFIX + "/"):
            await self._control(scope, receive, send, path[len(CONTROL_PREFIX) :])
        elif path == TOKEN_PATH:
            await self._token(scope, receive, send)
        else:
            error = ApiError(404, "NOT_FOUND", f"no such path {path}")
            await _reply(send, 404, error.body())

    # -- the API ---------------------------------------------------------------------------

    def _route(self, method: str, path: str) -> tuple[str, str | None]:
        """(operationId, path id) of a request; ApiError 404/405 when there is none."""
        operation_id = self._static.get((method, path))
        if operation_id is not None:
            return operation_id, None
        method_not_allowed = ApiError(405, "METHOD_NOT_ALLOWED", f"{method} not allowed on {path}")
        # A static path owns its segments: ``/self/calls/count`` is not a call id.
        if path in self._static_paths:
            raise method_not_allowed
        segments = path.split("/")
        allowed = False
        for template_method, template, template_id in self._templates:
            if len(template) == len(segments) and _matches(template, segments):
                if template_method == method:
                    return template_id, segments[template.index("{id}")]
                allowed = True
        if allowed:
            raise method_not_allowed
        raise ApiError(404, "NOT_FOUND", f"no such path {API_BASE_PATH}{path}")

    def _authorised(self, scope: Scope) -> bool:
        """The static token, or a token from the token endpoint that has not expired yet."""
        for name, value in scope["headers"]:
            if name == b"authorization":
                if hmac.compare_digest(value, self._expected_auth):
                    return True
                return self.state.tokens.check(value) is True
        return False

    async def _api(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        state = self.state
        method: str = scope["method"]
        try:
            operation_id, ident = self._route(method, path)
        except ApiError as error:
            operation_id, ident, route_error = UNKNOWN_OPERATION, None, error
        else:
            route_error = None
        if not self._authorised(scope):
            state.stats.count(operation_id, 401)
            await _reply(send, 401, None)
            return
        if route_error is not None:
            state.stats.count(operation_id, route_error.status)
            await _reply(send, route_error.status, route_error.body())
            return
        fault = state.injector.draw_fault()
        if fault is not None and await self._early_fault(send, operation_id, fault):
            return
        try:
            body = await _read_body(receive) if method != "GET" else b""
        except ApiError as error:
            status, payload = error.status, error.body()
        else:
            if fault == "slow" and not await _wait_for_client(receive, state.injector.behaviour):
                state.stats.count(operation_id, CLIENT_GONE_STATUS)
                return
            status, payload = self._handle(operation_id, ident, scope["query_string"], body)
        state.stats.count(operation_id, status)
        if fault == "truncated":
            await _reply_truncated(send, status, payload)
        else:
            await _reply(send, status, payload)

    async def _early_fault(self, send: Send, operation_id: str, fault: str) -> bool:
        """Answer with ``fault`` instead of the real response (True) if it is that kind."""
        behaviour = self.state.injector.behaviour
        if fault in STATUS_FAULTS:
            status = int(fault)
            headers = [(b"retry-after", behaviour.retry_after.encode())] if status == 429 else []
            self.state.stats.count(operation_id, status)
            await _reply(send, status, None, headers)
            return True
        if fault == "garbage":
            self.state.stats.count(operation_id, 200)
            await _reply(send, 200, GARBAGE_BODY)
            return True
        return False

    def _handle(
        self, operation_id: str, ident: str | None, query_string: bytes, body: bytes
    ) -> tuple[int, bytes | None]:
        try:
            return HANDLERS[operation_id](self.state, ident, parse_query(query_string), body)
        except ApiError as error:
            return error.status, error.body()
        except Exception:
            log.exception("operation %s failed", operation_id)
            error = ApiError(500, "INTERNAL_ERROR", "the simulator failed on this request")
            return 500, error.body()

    # -- tokens ----------------------------------------------------------------------------

    async def _token(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The OAuth token endpoint (never faulted: its misbehaviour is refusing credentials)."""
        if scope["method"] != "POST":
            body = orjson.dumps({"error": "invalid_request", "error_description": "use POST"})
            await _reply(send, 405, body, [(b"allow", b"POST")])
            return
        try:
            body = await _read_body(receive)
        except ApiError as error:
            await _reply(send, error.status, error.body())
            return
        status, payload, headers = self.state.tokens.answer(scope["headers"], body)
        await _reply(send, status, payload, headers)

    # -- control ---------------------------------------------------------------------------

    async def _control(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        handler = ROUTES.get((scope["method"], path))
        if handler is None:
            error = ApiError(404, "NOT_FOUND", f"no control endpoint {scope['method']} {path}")
            await _reply(send, 404, error.body())
            return
        try:
            body = await _read_body(receive) if scope["method"] != "GET" else b""
            status, payload = handler(self.state, parse_query(scope["query_string"]), body)
        except ApiError as error:
            status, payload = error.status, error.body()
        await _reply(send, status, payload)


async def _wait_for_client(receive: Receive, behaviour: Behaviour) -> bool:
    """Sit out a slow answer's delay; False if the client hung up meanwhile.

    Only this request waits: other connections are served meanwhile. A request whose client
    left is not answered, so it is counted at once rather than whenever the delay ends.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + behaviour.slow_seconds
    while (remaining := deadline - loop.time()) > 0:
        message = asyncio.ensure_future(receive())
        try:
            done, _pending = await asyncio.wait({message}, timeout=remaining)
        finally:
            message.cancel()
        if done and message.result()["type"] == "http.disconnect":
            return False
    return True


def _matches(template: tuple[str, ...], segments: list[str]) -> bool:
    return all(t == s or (t == "{id}" and s) for t, s in zip(template, segments, strict=True))


async def _read_body(receive: Receive) -> bytes:
    """The whole request body (413 past ``MAX_BODY_BYTES``)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise ApiError(413, "BODY_TOO_LARGE", "request body too large")
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _reply(
    send: Send,
    status: int,
    body: bytes | None,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """Send a whole response; no body means no content (an empty one for 401 and faults)."""
    extra = headers or []
    if body is None:
        start = extra if status == 204 else [(b"content-length", b"0"), *extra]
        await send({"type": "http.response.start", "status": status, "headers": start})
        await send({"type": "http.response.body", "body": b""})
        return
    start = [_JSON_TYPE, (b"content-length", str(len(body)).encode()), *extra]
    await send({"type": "http.response.start", "status": status, "headers": start})
    await send({"type": "http.response.body", "body": body})


async def _reply_truncated(send: Send, status: int, body: bytes | None) -> None:
    """Promise the whole body, send part of it, then drop the connection.

    Returning with the response unfinished makes the server close the connection; the
    server's complaint about it is silenced by the serving code.
    """
    whole = body if body else b"{}"
    start = [_JSON_TYPE, (b"content-length", str(len(whole)).encode())]
    await send({"type": "http.response.start", "status": status if body else 200, "headers": start})
    await send({"type": "http.response.body", "body": whole[: len(whole) // 2], "more_body": True})
