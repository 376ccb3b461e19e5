"""The VIS client against a real simulator over loopback HTTP.

Every typed method's answer is checked against the spec's schema for that operation; errors,
retries and secrecy are checked against the simulator's own request statistics.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import jsonschema
import pytest

from vis_pipeline.client import VISClient
from vis_pipeline.errors import (
    VISAPIError,
    VISAuthError,
    VISBadRequest,
    VISNotFound,
    VISRetriesExhausted,
)
from vis_pipeline.extract import WindowExtractor
from vis_pipeline.records import LIVE_STATES, parse_instant_ms
from vis_pipeline.retry import RetryPolicy
from vis_pipeline.simulator.process import SimulatorProcess
from vis_pipeline.spec import operations, success_schema

FAST_RETRIES = RetryPolicy(max_attempts=3, base=0.0, cap=0.0)
"""Retries without waiting, so fault tests take no longer than the faults themselves."""

SHORT_TIMEOUT = 0.5
"""Client timeout (s) for fault tests: well below the simulator's slow answers."""

SLOW_SECONDS = 1.5
"""How long the simulator takes over a 'slow' answer in these tests."""


def _check(operation: str, body: Any) -> None:
    """Validate ``body`` against the spec's success schema of ``operation``.

    Two readings of the API notes apply: an optional field may be null (the schema says
    string), and a live call has no ``duration`` yet although the Call schema requires it.
    """
    _, schema = success_schema(operation)
    assert schema is not None
    jsonschema.validate(_as_the_notes_read(body), schema)


def _as_the_notes_read(body: Any) -> Any:
    """``body`` without null fields, with a placeholder duration on live calls."""
    if isinstance(body, list):
        return [_as_the_notes_read(item) for item in body]
    if not isinstance(body, dict):
        return body
    kept = {key: _as_the_notes_read(value) for key, value in body.items() if value is not None}
    if kept.get("state") in LIVE_STATES and "duration" not in kept:
        kept["duration"] = 0
    return kept


def _requests(stats: dict[str, Any], operation: str | None = None) -> int:
    """Requests the simulator saw (for one operation, or all)."""
    per_op = stats["requests"]
    chosen = per_op.values() if operation is None else [per_op.get(operation, {})]
    return sum(sum(by_status.values()) for by_status in chosen)


def _text_of(exc: BaseException) -> str:
    """Everything an exception chain shows: each message, repr and formatted line."""
    parts: list[str] = []
    current: BaseException | None = exc
    while current is not None:
        parts += [str(current), repr(current), *traceback.format_exception_only(current)]
        current = current.__cause__ or current.__context__
    return "\n".join(parts)


@pytest.fixture
def client(fresh_simulator: SimulatorProcess) -> Iterator[VISClient]:
    """A client of the module's simulator, with its default settings."""
    with VISClient(fresh_simulator.base_url, fresh_simulator.token) as made:
        yield made


def _fault_client(sim: SimulatorProcess, policy: RetryPolicy = FAST_RETRIES) -> VISClient:
    return VISClient(sim.base_url, sim.token, timeout=SHORT_TIMEOUT, retry=policy)


# -- every operation -------------------------------------------------------------------------


def test_every_operation_has_a_method() -> None:
    wire = {
        "getUser",
        "getAccount",
        "listCalls",
        "createCall",
        "getCallsCount",
        "destroyCall",
        "getRoles",
        "callAnswer",
        "callUnold",
        "callHold",
        "callTransfer",
        "callVMTransfer",
        "listEvents",
        "getEventsCount",
        "getEvent",
        "listWebhooks",
        "createWebhook",
        "destroyWebhook",
        "viewWebhook",
        "renewWebhook",
    }
    assert set(operations()) == wire


def test_user_account_and_events(client: VISClient, fresh_simulator: SimulatorProcess) -> None:
    user = client.get_user()
    _check("getUser", user)
    _check("getAccount", client.get_account())

    events = client.list_events(size=50)
    _check("listEvents", events)
    assert len(events) == 50
    count = client.get_events_count()
    _check("getEventsCount", count)
    assert count["count"] >= 50

    one = client.get_event(events[7]["id"])
    _check("getEvent", [one])
    assert one == events[7]

    first, last = (
        parse_instant_ms(events[0]["startTime"]),
        parse_instant_ms(events[-1]["startTime"]),
    )
    window = client.list_events(from_date=first, to_date=last + 1, size=1000)
    assert {e["id"] for e in events} <= {e["id"] for e in window}
    assert client.get_events_count(from_date=first, to_date=last + 1)["count"] == len(window)
    stats = fresh_simulator.control.stats()
    assert _requests(stats, "getUser") == 1
    assert _requests(stats, "getEvent") == 1


def test_call_control(client: VISClient) -> None:
    placed = client.create_call("+14155550100")
    _check("createCall", placed)
    call_id = placed[0]["id"]
    assert placed[0]["state"] in {"INITIALIZING", "RINGING"}

    _check("getRoles", client.get_call(call_id))
    live = client.list_calls(states=["INITIALIZING", "RINGING", "ACTIVE", "HELD", "REMOTE_HELD"])
    _check("listCalls", live)
    assert call_id in {call["id"] for call in live}
    counted = client.get_calls_count(states="RINGING,INITIALIZING,ACTIVE,HELD,REMOTE_HELD")
    _check("getCallsCount", counted)
    assert counted["count"] == len(live)

    answered = client.answer_call(call_id)
    _check("callAnswer", answered)
    assert answered["state"] == "ACTIVE"
    held = client.hold_call(call_id)
    _check("callHold", held)
    assert held["state"] == "HELD"
    resumed = client.unhold_call(call_id)
    _check("callUnold", resumed)
    assert resumed["state"] == "ACTIVE"
    moved = client.transfer_call(call_id, "+14155550199")
    _check("callTransfer", moved)
    assert moved["state"] == "DETACHED"

    second = client.create_call("+14155550101")[0]["id"]
    voicemail = client.transfer_call_to_voicemail(second)
    _check("callVMTransfer", voicemail)
    assert voicemail["state"] == "MISSED"

    third = client.create_call("+14155550102")[0]["id"]
    ended = client.destroy_call(third)
    _check("destroyCall", ended)
    assert ended[0]["state"] == "CANCELLED"

    # The event endpoints serve the same record as the call endpoints.
    assert client.get_event(call_id)["state"] == "DETACHED"


def test_webhooks(client: VISClient) -> None:
    created = client.create_webhook(
        "https://hooks.example.com/vis", signing_key="s3cret-signing-key", metadata_policy="HEADER"
    )
    _check("createWebhook", created)
    hook_id = created["id"]
    listed = client.list_webhooks()
    _check("listWebhooks", listed)
    assert hook_id in {hook["id"] for hook in listed}
    viewed = client.view_webhook(hook_id)
    _check("viewWebhook", viewed)
    assert viewed["url"] == "https://hooks.example.com/vis"
    _check("renewWebhook", client.renew_webhook(hook_id))
    assert client.destroy_webhook(hook_id) is None
    with pytest.raises(VISNotFound):
        client.view_webhook(hook_id)


# -- errors ----------------------------------------------------------------------------------


def test_settings_rebuild_the_client_only_when_a_copy_would_behave_the_same() -> None:
    plain = VISClient("http://127.0.0.1:9", "t0ken", timeout=2.5, concurrency=3)
    settings = plain.settings
    assert settings is not None and "t0ken" not in repr(settings)
    with settings.client() as copy:
        assert copy.settings == settings
    # A caller's transport, or a caller's clock for the retries, stays in the caller's process.
    sleeps: list[float] = []
    assert (
        VISClient("http://127.0.0.1:9", "t", retry=RetryPolicy(sleep=sleeps.append)).settings
        is None
    )
    assert (
        VISClient("http://127.0.0.1:9", "t", transport=httpx.MockTransport(lambda r: None)).settings
        is None
    )


def test_wrong_token_fails_at_once(fresh_simulator: SimulatorProcess) -> None:
    wrong = "wrong-token-0123456789"
    client = VISClient(fresh_simulator.base_url, wrong, retry=RetryPolicy())
    with client, pytest.raises(VISAuthError) as caught:
        client.get_user()
    assert caught.value.status == 401
    assert "token was rejected" in str(caught.value)
    assert "getUser" in str(caught.value)
    text = _text_of(caught.value)
    assert wrong not in text and fresh_simulator.token not in text
    assert fresh_simulator.control.stats()["total"] == 1


def test_wrong_token_stops_an_extraction_at_once(fresh_simulator: SimulatorProcess) -> None:
    start, end = datetime(2026, 3, 2, tzinfo=UTC), datetime(2026, 3, 4, tzinfo=UTC)
    client = VISClient(fresh_simulator.base_url, "expired-token-xyz")
    with client, WindowExtractor(client) as extractor, pytest.raises(VISAuthError):
        list(extractor.iter_events(start, end))
    # One count per window at most, never a retry.
    assert fresh_simulator.control.stats()["total"] <= 2


def test_not_found_names_operation_and_code(client: VISClient) -> None:
    with pytest.raises(VISNotFound) as caught:
        client.get_event(1)
    error = caught.value
    assert error.status == 404 and error.operation == "getEvent"
    assert error.error_code == "NOT_FOUND"
    assert "getEvent" in str(error) and "NOT_FOUND" in str(error)


def test_bad_request_names_operation_and_code(client: VISClient) -> None:
    with pytest.raises(VISBadRequest) as caught:
        client.list_events(order="SIDEWAYS")
    error = caught.value
    assert error.status == 400 and error.operation == "listEvents"
    assert error.error_code == "INVALID_PARAMETER"
    assert (
        "listEvents" in str(error) and "INVALID_PARAMETER" in str(error) and "order" in str(error)
    )


def test_unprocessable_is_a_bad_request(
    client: VISClient, fresh_simulator: SimulatorProcess
) -> None:
    with pytest.raises(VISBadRequest) as caught:
        client.create_webhook("ftp://nowhere.example.com", signing_key="k-123456")
    error = caught.value
    assert error.status == 422 and error.error_code == "VALIDATION_ERROR"
    assert error.errors or error.error_message
    assert "createWebhook" in str(error) and "k-123456" not in _text_of(error)

    call_id = client.create_call("+14155550111")[0]["id"]
    client.destroy_call(call_id)
    with pytest.raises(VISBadRequest) as state_error:
        client.answer_call(call_id)
    assert state_error.value.status == 422
    assert "callAnswer" in str(state_error.value)
    assert "INVALID_CALL_STATE" in str(state_error.value)
    # Refusals are never retried.
    assert _requests(fresh_simulator.control.stats(), "callAnswer") == 1


def test_errors_are_typed() -> None:
    assert issubclass(VISBadRequest, VISAPIError)
    assert issubclass(VISAuthError, VISAPIError)
    assert issubclass(VISNotFound, VISAPIError)


# -- secrecy ---------------------------------------------------------------------------------


def test_token_never_logged_nor_shown(
    fresh_simulator: SimulatorProcess, caplog: pytest.LogCaptureFixture
) -> None:
    token = fresh_simulator.token
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "vis_pipeline"):
        caplog.set_level(logging.DEBUG, logger=name)
    fresh_simulator.control.set_behaviour(probability=0.5, kinds=["500", "garbage"], seed=3)
    with _fault_client(fresh_simulator, RetryPolicy(max_attempts=8, base=0.0)) as client:
        assert token not in repr(client) and fresh_simulator.base_url in repr(client)
        client.get_user()
        client.list_events(size=5)
        fresh_simulator.control.set_behaviour(probability=1.0, kinds=["truncated"])
        with pytest.raises(VISRetriesExhausted) as caught:
            client.get_account()
    assert caplog.records, "expected the client and httpx to log something"
    assert any(record.name.startswith("vis_pipeline") for record in caplog.records)
    for record in caplog.records:
        assert token not in record.getMessage()
    assert token not in caplog.text
    assert token not in _text_of(caught.value)


def test_a_token_no_header_can_carry_is_refused_without_showing_it() -> None:
    for token, visible_part in (("hidden-part\nX-Injected: 1", "hidden-part"), ("sécret", "cret")):
        with pytest.raises(ValueError) as caught:
            VISClient("http://127.0.0.1:9/t/vbc.prod/vis/v1", token)
        assert visible_part not in _text_of(caught.value)


def test_a_proxy_from_the_environment_is_honoured(
    fresh_simulator: SimulatorProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "HTTPS_PROXY", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    # A proxy that refuses connections: a request that honours it cannot get through.
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    no_retry = RetryPolicy(max_attempts=1)
    with VISClient(fresh_simulator.base_url, fresh_simulator.token, retry=no_retry) as client:
        with pytest.raises(VISRetriesExhausted, match="ConnectError"):
            client.get_user()
        with pytest.raises(VISRetriesExhausted, match="ConnectError"):
            client.get_events_count(from_date=datetime(2026, 3, 2, tzinfo=UTC))
    assert fresh_simulator.control.stats()["total"] == 0
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    with VISClient(fresh_simulator.base_url, fresh_simulator.token, retry=no_retry) as client:
        client.get_user()
        assert client.get_events_count(from_date=datetime(2026, 3, 2, tzinfo=UTC))["count"]


# -- retries ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["429", "500", "502", "408", "slow", "truncated", "garbage"])
def test_each_fault_kind_is_retried(fresh_simulator: SimulatorProcess, kind: str) -> None:
    control = fresh_simulator.control
    control.set_behaviour(probability=1.0, kinds=[kind], retry_after="0", slow_seconds=SLOW_SECONDS)
    with _fault_client(fresh_simulator) as client, pytest.raises(VISRetriesExhausted) as caught:
        client.get_account()
    assert caught.value.attempts == FAST_RETRIES.max_attempts
    assert caught.value.operation == "getAccount"
    stats = control.stats()
    assert stats["faults"].get(kind) == FAST_RETRIES.max_attempts
    if kind != "slow":  # a slow answer is counted only once the simulator has sent it
        assert _requests(stats, "getAccount") == FAST_RETRIES.max_attempts


def test_transient_faults_are_ridden_out(fresh_simulator: SimulatorProcess) -> None:
    control = fresh_simulator.control
    control.set_behaviour(probability=0.4, seed=5, retry_after="0", slow_seconds=SLOW_SECONDS)
    policy = RetryPolicy(max_attempts=10, base=0.0)
    with _fault_client(fresh_simulator, policy) as client:
        answers = [client.get_account() for _ in range(15)]
        spent = client.retry_budget.spent
    assert all(answer == answers[0] for answer in answers)
    faults = control.stats()["faults"]
    assert sum(faults.values()) > 0
    # Every injected fault cost exactly one retry: nothing else was repeated.
    assert spent == sum(faults.values())


def test_retry_after_is_honoured(fresh_simulator: SimulatorProcess) -> None:
    fresh_simulator.control.set_behaviour(probability=1.0, kinds=["429"], retry_after="1")
    policy = RetryPolicy(max_attempts=2, base=0.0)
    with _fault_client(fresh_simulator, policy) as client:
        began = time.monotonic()
        with pytest.raises(VISRetriesExhausted):
            client.get_user()
        waited = time.monotonic() - began
    assert waited >= 0.95
    assert _requests(fresh_simulator.control.stats(), "getUser") == 2


def test_retry_budget_exhausted_is_clear(fresh_simulator: SimulatorProcess) -> None:
    fresh_simulator.control.set_behaviour(probability=1.0, kinds=["500"])
    policy = RetryPolicy(max_attempts=10, base=0.0, budget=2)
    with _fault_client(fresh_simulator, policy) as client:
        with pytest.raises(VISRetriesExhausted) as first:
            client.get_user()
        with pytest.raises(VISRetriesExhausted) as second:
            client.get_user()
    assert first.value.budget_exhausted and first.value.attempts == 3
    assert "budget" in str(first.value) and "HTTP 500" in str(first.value)
    assert second.value.budget_exhausted and second.value.attempts == 1
    assert _requests(fresh_simulator.control.stats(), "getUser") == 4
