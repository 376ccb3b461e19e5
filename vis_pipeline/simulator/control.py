"""The simulator's own endpoints (no auth, never faulted): truth, clock, behaviour, stats, tokens,
webhook deliveries.

They live under ``/_simulator/``, outside the API's base path, and let demos, tests and
benchmarks read the ground truth and steer the simulator while it runs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from vis_pipeline.records import InvalidInstant, format_instant_ms, parse_instant_ms
from vis_pipeline.simulator.behaviour import BehaviourError
from vis_pipeline.simulator.params import ApiError, integer, json_body
from vis_pipeline.simulator.state import SimulatorState

CONTROL_PREFIX = "/_simulator"
"""Path prefix of the control endpoints."""

Reply = tuple[int, bytes | None]
"""Status and body (None: no body)."""

ControlHandler = Callable[[SimulatorState, dict[str, str], bytes], Reply]
"""What every control handler looks like."""


def _json(value: Any) -> Reply:
    return 200, orjson.dumps(value)


def _refuse(field: str, message: str) -> ApiError:
    return ApiError(400, "INVALID_CONTROL", f"{field}: {message}", field)


def truth(state: SimulatorState, params: dict[str, str], _body: bytes) -> Reply:
    """Visible events of [fromDate, toDate) in wire format, by startTime then id."""
    from_ms, to_ms = integer(params, "fromDate"), integer(params, "toDate")
    return 200, state.truth.window_bytes(from_ms, to_ms)


def index(_state: SimulatorState, _params: dict[str, str], _body: bytes) -> Reply:
    """What the control endpoint offers: each method and path below it, with what it does."""
    return _json(
        [
            {"method": method, "path": CONTROL_PREFIX + path, "does": _first_doc_line(handler)}
            for (method, path), handler in ROUTES.items()
            if path not in ("", "/")
        ]
    )


def _first_doc_line(handler: ControlHandler) -> str:
    return (handler.__doc__ or "").strip().splitlines()[0] if handler.__doc__ else ""


def users(state: SimulatorState, _params: dict[str, str], _body: bytes) -> Reply:
    """Every user of the account."""
    return _json(state.truth.users)


def stats(state: SimulatorState, _params: dict[str, str], _body: bytes) -> Reply:
    """Request counts by operation and status, fault counts by kind."""
    return _json(state.stats_json())


def reset_stats(state: SimulatorState, _params: dict[str, str], _body: bytes) -> Reply:
    """Forget the counts."""
    state.reset_stats()
    return _json(state.stats_json())


def _clock_json(state: SimulatorState) -> dict[str, str]:
    return {"now": format_instant_ms(state.truth.now_ms)}


def clock(state: SimulatorState, _params: dict[str, str], _body: bytes) -> Reply:
    """The simulated clock's reading."""
    return _json(_clock_json(state))


def set_clock(state: SimulatorState, _params: dict[str, str], body: bytes) -> Reply:
    """Move the clock: ``{"advance_seconds": x}`` or ``{"now": iso}``."""
    request = json_body(body)
    if not isinstance(request, dict) or len(request) != 1:
        raise _refuse("body", 'expected {"advance_seconds": x} or {"now": "<ISO instant>"}')
    if "advance_seconds" in request:
        seconds = request["advance_seconds"]
        if isinstance(seconds, bool) or not isinstance(seconds, int | float):
            raise _refuse("advance_seconds", f"expected a number, got {seconds!r}")
        state.move_clock(state.truth.now_ms + round(seconds * 1000))
    elif "now" in request:
        try:
            state.move_clock(parse_instant_ms(request["now"]))
        except InvalidInstant as exc:
            raise _refuse("now", str(exc)) from None
    else:
        raise _refuse("body", f"unknown clock setting {next(iter(request))!r}")
    return _json(_clock_json(state))


def behaviour(state: SimulatorState, _params: dict[str, str], _body: bytes) -> Reply:
    """The behaviour in force."""
    return _json(state.injector.behaviour.to_json())


def set_behaviour(state: SimulatorState, _params: dict[str, str], body: bytes) -> Reply:
    """Merge the given settings into the behaviour in force (all or nothing)."""
    changes = json_body(body)
    if not isinstance(changes, dict):
        raise _refuse("body", "expected a JSON object of behaviour settings")
    try:
        return _json(state.injector.update(changes).to_json())
    except BehaviourError as exc:
        raise _refuse("behaviour", str(exc)) from None


def reset_behaviour(state: SimulatorState, _params: dict[str, str], _body: bytes) -> Reply:
    """Back to no faults and the usual readings."""
    state.injector.reset()
    return _json(state.injector.behaviour.to_json())


def inject(state: SimulatorState, _params: dict[str, str], body: bytes) -> Reply:
    """Add raw records, served as they are (valid or not), visible at once."""
    records = json_body(body)
    if not isinstance(records, list):
        raise _refuse("body", "expected a JSON array of records")
    return _json({"injected": state.truth.inject(records)})


def revoke_refresh_tokens(state: SimulatorState, _params: dict[str, str], body: bytes) -> Reply:
    """Revoke ``{"refresh_token": t}``, or with no body every refresh token issued so far."""
    request = json_body(body) if body else {}
    if not isinstance(request, dict) or set(request) - {"refresh_token"}:
        raise _refuse("body", 'expected nothing or {"refresh_token": "<token>"}')
    token = request.get("refresh_token")
    if token is not None and not isinstance(token, str):
        raise _refuse("refresh_token", f"expected a string, got {type(token).__name__}")
    return _json({"revoked": state.tokens.revoke_refresh_tokens(token)})


def expire_access_tokens(state: SimulatorState, _params: dict[str, str], _body: bytes) -> Reply:
    """End the life of every access token issued so far, as a server-side logout would."""
    return _json({"expired": state.tokens.expire_access_tokens()})


def issued_tokens(state: SimulatorState, _params: dict[str, str], _body: bytes) -> Reply:
    """Every access and refresh token issued: what a test searches logs and files for."""
    return _json(state.tokens.issued())


def webhook_deliveries(state: SimulatorState, params: dict[str, str], _body: bytes) -> Reply:
    """The delivery log from line ``since`` on (default 0): one line per attempt."""
    return _json(state.deliveries.log_since(integer(params, "since") or 0))


def webhook_activity(state: SimulatorState, _params: dict[str, str], _body: bytes) -> Reply:
    """Deliveries queued, in flight and waiting for a retry or held back."""
    return _json(state.deliveries.activity())


ROUTES: dict[tuple[str, str], ControlHandler] = {
    ("GET", ""): index,
    ("GET", "/"): index,
    ("GET", "/truth"): truth,
    ("GET", "/users"): users,
    ("GET", "/stats"): stats,
    ("POST", "/stats/reset"): reset_stats,
    ("GET", "/clock"): clock,
    ("POST", "/clock"): set_clock,
    ("GET", "/behaviour"): behaviour,
    ("PUT", "/behaviour"): set_behaviour,
    ("POST", "/behaviour/reset"): reset_behaviour,
    ("POST", "/events"): inject,
    ("POST", "/oauth/revoke"): revoke_refresh_tokens,
    ("POST", "/oauth/expire"): expire_access_tokens,
    ("GET", "/oauth/tokens"): issued_tokens,
    ("GET", "/webhooks/deliveries"): webhook_deliveries,
    ("GET", "/webhooks/activity"): webhook_activity,
}
"""Control handlers by (method, path below the prefix)."""
