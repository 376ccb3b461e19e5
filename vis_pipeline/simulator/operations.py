"""The 20 operations of the VIS API, each answering as the spec shapes it.

A handler takes the simulator state, the path's ``{id}`` (or None), the query parameters and
the raw request body, and returns (status, body bytes or None). Refusals raise ``ApiError``.
"""

from __future__ import annotations

from collections.abc import Callable

import orjson

from vis_pipeline.simulator import calls, listing
from vis_pipeline.simulator.events import SimEvent, bytes_at, call_record_at
from vis_pipeline.simulator.params import (
    ApiError,
    json_body,
    list_query,
    required_string,
)
from vis_pipeline.simulator.state import SimulatorState
from vis_pipeline.simulator.truth import Truth
from vis_pipeline.simulator.webhooks import WebhookError

Reply = tuple[int, bytes | None]
"""Status and body (None: no body)."""

Handler = Callable[[SimulatorState, str | None, dict[str, str], bytes], Reply]
"""What every operation handler looks like."""


def _json(value: object, status: int = 200) -> Reply:
    return status, orjson.dumps(value)


def _not_found(what: str, ident: str | None) -> ApiError:
    return ApiError(404, "NOT_FOUND", f"{what} {ident} not found", "id")


def get_user(state: SimulatorState, _id: str | None, _q: dict[str, str], _b: bytes) -> Reply:
    """getUser: the token's own user."""
    return _json(state.owner)


def get_account(state: SimulatorState, _id: str | None, _q: dict[str, str], _b: bytes) -> Reply:
    """getAccount: the company's account."""
    return _json(state.truth.account)


def list_events(state: SimulatorState, _id: str | None, query: dict[str, str], _b: bytes) -> Reply:
    """listEvents: one page of the visible events."""
    return 200, listing.events_page(state.truth, list_query(query), state.injector)


def get_events_count(
    state: SimulatorState, _id: str | None, query: dict[str, str], _b: bytes
) -> Reply:
    """getEventsCount: how many visible events the window and filters hold."""
    checked = list_query(query, paged=False)
    return _json({"count": listing.events_count(state.truth, checked, state.injector.behaviour)})


def get_event(state: SimulatorState, ident: str | None, _q: dict[str, str], _b: bytes) -> Reply:
    """getEvent: an array holding the one event."""
    event = state.truth.get(ident or "")
    if event is None:
        raise _not_found("event", ident)
    return 200, b"[" + bytes_at(event, state.truth.now_ms) + b"]"


def list_calls(state: SimulatorState, _id: str | None, query: dict[str, str], _b: bytes) -> Reply:
    """listCalls: one page of the calls in progress (ACTIVE ones unless told)."""
    return 200, listing.calls_page(state.truth, list_query(query, calls=True), state.injector)


def get_calls_count(
    state: SimulatorState, _id: str | None, query: dict[str, str], _b: bytes
) -> Reply:
    """getCallsCount: how many calls in progress the filters hold."""
    checked = list_query(query, calls=True, paged=False)
    return _json({"count": listing.calls_count(state.truth, checked, state.injector.behaviour)})


def _call(state: SimulatorState, ident: str | None) -> SimEvent:
    """The call with id ``ident`` (404 when there is none, or it is an injected record)."""
    event = state.truth.get(ident or "")
    if event is None or event.raw is not None:
        raise _not_found("call", ident)
    return event


def _call_json(state: SimulatorState, event: SimEvent, as_list: bool, status: int = 200) -> Reply:
    record = call_record_at(event, state.truth.now_ms)
    return _json([record] if as_list else record, status)


def create_call(state: SimulatorState, _id: str | None, _q: dict[str, str], body: bytes) -> Reply:
    """createCall: place an outbound call, ringing from now."""
    phone = required_string(json_body(body), "phoneNumber")
    owner = state.owner
    uci_id = owner["ucis"][0]["id"]
    event = calls.place_call(state.truth, phone, owner["id"], owner["accountId"], uci_id)
    state.deliveries.call_changed(event)
    return _call_json(state, event, as_list=True, status=201)


def get_call(state: SimulatorState, ident: str | None, _q: dict[str, str], _b: bytes) -> Reply:
    """getRoles ("Get a call"): an array holding the call, live or finished."""
    return _call_json(state, _call(state, ident), as_list=True)


def _control(
    action: Callable[[Truth, SimEvent], None],
    as_list: bool = False,
    needs: str = "",
    delivered: bool = True,
) -> Handler:
    """A handler applying call-control ``action`` to the call in the path; the change is
    delivered to the webhooks unless ``delivered`` is False (holds are not delivered)."""

    def handler(state: SimulatorState, ident: str | None, _q: dict[str, str], body: bytes) -> Reply:
        if needs:
            required_string(json_body(body), needs)
        event = _call(state, ident)
        try:
            action(state.truth, event)
        except calls.CallStateError as exc:
            raise ApiError(422, "INVALID_CALL_STATE", str(exc), "id") from None
        if delivered:
            state.deliveries.call_changed(event)
        return _call_json(state, event, as_list=as_list)

    return handler


def list_webhooks(state: SimulatorState, _id: str | None, _q: dict[str, str], _b: bytes) -> Reply:
    """listWebhooks: every registration."""
    return _json([hook.to_wire() for hook in state.webhooks.webhooks.values()])


def create_webhook(
    state: SimulatorState, _id: str | None, _q: dict[str, str], body: bytes
) -> Reply:
    """createWebhook: register a webhook (its signing key is never echoed)."""
    try:
        webhook = state.webhooks.create(json_body(body), state.truth.now_ms)
    except WebhookError as exc:
        raise ApiError(422, "VALIDATION_ERROR", f"{exc.field}: {exc}", exc.field) from None
    return _json(webhook.to_wire(), 201)


def view_webhook(state: SimulatorState, ident: str | None, _q: dict[str, str], _b: bytes) -> Reply:
    """viewWebhook: one registration."""
    webhook = state.webhooks.get(ident or "")
    if webhook is None:
        raise _not_found("webhook", ident)
    return _json(webhook.to_wire())


def renew_webhook(state: SimulatorState, ident: str | None, _q: dict[str, str], _b: bytes) -> Reply:
    """renewWebhook: extend a registration from now and clear its failed flag."""
    webhook = state.webhooks.renew(ident or "", state.truth.now_ms)
    if webhook is None:
        raise _not_found("webhook", ident)
    return _json(webhook.to_wire())


def destroy_webhook(
    state: SimulatorState, ident: str | None, _q: dict[str, str], _b: bytes
) -> Reply:
    """destroyWebhook: remove a registration (no body)."""
    if not state.webhooks.delete(ident or ""):
        raise _not_found("webhook", ident)
    return 204, None


HANDLERS: dict[str, Handler] = {
    "getUser": get_user,
    "getAccount": get_account,
    "listCalls": list_calls,
    "createCall": create_call,
    "getCallsCount": get_calls_count,
    "destroyCall": _control(calls.hang_up, as_list=True),
    "getRoles": get_call,
    "callAnswer": _control(calls.answer),
    "callUnold": _control(calls.unhold, delivered=False),
    "callHold": _control(calls.hold, delivered=False),
    "callTransfer": _control(calls.transfer, needs="phoneNumber"),
    "callVMTransfer": _control(calls.voicemail),
    "listEvents": list_events,
    "getEventsCount": get_events_count,
    "getEvent": get_event,
    "listWebhooks": list_webhooks,
    "createWebhook": create_webhook,
    "destroyWebhook": destroy_webhook,
    "viewWebhook": view_webhook,
    "renewWebhook": renew_webhook,
}
"""The handler of every operationId in the spec."""
