"""The VIS simulator over real loopback HTTP: contract, data, readings, faults, clock, control.

Expected values come from the spec, from the simulator's truth endpoint or from arithmetic on
the records themselves, never from the simulator's own code.
"""

from __future__ import annotations

import argparse
import os
import pty
import re
import select
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import jsonschema
import orjson
import pytest
from helpers import SMALL

from vis_pipeline.records import FINAL_STATES, LIVE_STATES, event_problem, parse_instant_ms
from vis_pipeline.simulator import add_arguments, options_from_args
from vis_pipeline.simulator.options import OptionsError
from vis_pipeline.simulator.process import (
    Behaviour,
    SimulatorError,
    SimulatorOptions,
    SimulatorProcess,
)
from vis_pipeline.simulator.truth import Truth
from vis_pipeline.spec import load_spec, operations, success_schema

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
ALL_LIVE = "INITIALIZING,RINGING,ACTIVE,HELD,REMOTE_HELD"
NO_TOKEN_REQUESTS = {"requests": 0, "issued": 0, "refused": 0, "by_grant": {}, "expired": 0}
"""Token statistics of a simulator whose token endpoint was not asked (see test_auth.py)."""
ANSWERED = {"ANSWERED", "DETACHED", "ACTIVE", "HELD", "REMOTE_HELD"}
E164 = re.compile(r"^\+[1-9]\d{7,14}$")
ERROR_SCHEMA = {
    "$ref": "#/components/schemas/ErrorResponse",
    "components": load_spec()["components"],
}


# -- helpers ---------------------------------------------------------------------------------


def _api(sim: SimulatorProcess, token: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token or sim.token}"}
    return httpx.Client(base_url=sim.base_url, headers=headers, trust_env=False, timeout=20)


def _without_nulls(value: Any) -> Any:
    """The project reads a null optional field as an absent one (the spec has no nullable)."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(item) for item in value]
    return value


def _check(operation_id: str, response: httpx.Response) -> Any:
    """The response's body, after checking status and body against the spec."""
    status, schema = success_schema(operation_id)
    assert response.status_code == status, (operation_id, response.status_code, response.text)
    if schema is None:
        assert response.content == b""
        return None
    body = orjson.loads(response.content)
    jsonschema.validate(_without_nulls(body), schema)
    return body


def _error(response: httpx.Response, status: int, field: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = orjson.loads(response.content)
    jsonschema.validate(body, ERROR_SCHEMA)
    assert body["errorCode"] and body["errorMessage"]
    if field is not None:
        assert field in {error["field"] for error in body["errors"]}
    return body


def _ms(text: str) -> int:
    return parse_instant_ms(text)


def _ids(records: list[dict[str, Any]]) -> list[Any]:
    return [record["id"] for record in records]


@pytest.fixture
def private() -> Iterator[SimulatorProcess]:
    """A simulator of the tests' small data set for one test that changes its data or clock."""
    with SimulatorProcess(SMALL) as sim:
        yield sim


# -- the contract ----------------------------------------------------------------------------


def test_every_operation_answers_as_the_spec_says(private: SimulatorProcess) -> None:
    seen: set[str] = set()

    def check(operation_id: str, response: httpx.Response) -> Any:
        seen.add(operation_id)
        return _check(operation_id, response)

    with _api(private) as api:
        user = check("getUser", api.get("/self"))
        account = check("getAccount", api.get("/self/account"))
        assert user["accountId"] == account["id"] and "acountLabel" in user
        events = check("listEvents", api.get("/self/events", params={"size": 50}))
        assert len(events) == 50
        count = check("getEventsCount", api.get("/self/events/count"))
        assert count["count"] == len(private.control.truth())
        one = check("getEvent", api.get(f"/self/events/{events[7]['id']}"))
        assert one == [events[7]]
        live = check("listCalls", api.get("/self/calls", params={"states": ALL_LIVE}))
        counted = check("getCallsCount", api.get("/self/calls/count", params={"states": ALL_LIVE}))
        assert counted["count"] == len(live) > 0

        placed = check("createCall", api.post("/self/calls", json={"phoneNumber": "+14155550100"}))
        call = placed[0]["id"]
        assert check("getRoles", api.get(f"/self/calls/{call}"))[0]["id"] == call
        assert check("callAnswer", api.put(f"/self/calls/{call}/answer"))["state"] == "ACTIVE"
        assert check("callHold", api.put(f"/self/calls/{call}/hold"))["state"] == "HELD"
        assert check("callUnold", api.delete(f"/self/calls/{call}/hold"))["state"] == "ACTIVE"
        moved = api.post(f"/self/calls/{call}/transfer", json={"phoneNumber": "+14155550199"})
        assert check("callTransfer", moved)["state"] == "DETACHED"
        second = api.post("/self/calls", json={"phoneNumber": "+14155550101"}).json()[0]["id"]
        assert check("callVMTransfer", api.put(f"/self/calls/{second}/vmtransfer"))["state"] == (
            "MISSED"
        )
        third = api.post("/self/calls", json={"phoneNumber": "+14155550102"}).json()[0]["id"]
        assert check("destroyCall", api.delete(f"/self/calls/{third}"))[0]["state"] == "CANCELLED"

        hook = check("createWebhook", api.post("/self/webhooks", json={"url": "https://h.example"}))
        assert hook["id"] in _ids(check("listWebhooks", api.get("/self/webhooks")))
        assert check("viewWebhook", api.get(f"/self/webhooks/{hook['id']}"))["id"] == hook["id"]
        assert check("renewWebhook", api.put(f"/self/webhooks/{hook['id']}/renew"))["id"]
        check("destroyWebhook", api.delete(f"/self/webhooks/{hook['id']}"))
    assert seen == set(operations())


def test_wrong_or_missing_token_is_401_without_body(simulator: SimulatorProcess) -> None:
    with _api(simulator, token="not-the-token") as wrong, httpx.Client(trust_env=False) as bare:
        for path in ("/self", "/self/events", "/self/calls/123", "/no/such/path"):
            answer = wrong.get(path)
            assert (answer.status_code, answer.content) == (401, b"")
            answer = bare.get(simulator.base_url + path)
            assert (answer.status_code, answer.content) == (401, b"")
        # The control endpoints are the simulator's own: no token needed.
        assert bare.get(simulator.control_url + "/clock").status_code == 200


@pytest.mark.parametrize(
    ("params", "status", "field"),
    [
        ({"fromDate": "yesterday"}, 400, "fromDate"),
        ({"toDate": "1.5"}, 400, "toDate"),
        ({"offset": "first"}, 400, "offset"),
        ({"size": "ten"}, 400, "size"),
        ({"size": "0"}, 400, "size"),
        ({"size": "-3"}, 400, "size"),
        ({"direction": "SIDEWAYS"}, 400, "direction"),
        ({"states": "ACTIVE,BOGUS"}, 400, "states"),
        ({"types": "SMS"}, 400, "types"),
        ({"order": "UP"}, 400, "order"),
        ({"sort": "colour"}, 400, "sort"),
        ({"fromDate": "2000", "toDate": "1000"}, 422, "fromDate"),
    ],
)
def test_bad_parameters_are_refused(
    simulator: SimulatorProcess, params: dict[str, str], status: int, field: str
) -> None:
    with _api(simulator) as api:
        _error(api.get("/self/events", params=params), status, field)
        if field not in {"offset", "size", "order", "sort", "types"}:
            _error(api.get("/self/events/count", params=params), status, field)


def test_other_refusals(simulator: SimulatorProcess) -> None:
    with _api(simulator) as api:
        assert api.get("/self/events", params={"states": "ACTIVE,RINGING"}).status_code == 200
        _error(api.get("/self/calls", params={"states": "ANSWERED"}), 400, "states")
        _error(api.get("/self/events/42"), 404)
        _error(api.get("/self/calls/42"), 404)
        _error(api.get("/self/nothing"), 404)
        _error(api.post("/self/calls", content=b"{not json"), 400)
        _error(api.post("/self/calls", json={"number": "+1415"}), 422, "phoneNumber")
        _error(api.post("/self/webhooks", json={"events": ["CALL"]}), 422, "url")


# -- the data --------------------------------------------------------------------------------


def test_same_seed_same_truth_other_seed_other_truth(simulator: SimulatorProcess) -> None:
    truth = simulator.control.truth()
    with SimulatorProcess(SMALL) as twin:
        assert twin.control.truth() == truth
        assert twin.control.users() == simulator.control.users()
    with SimulatorProcess(replace(SMALL, seed=SMALL.seed + 1)) as other:
        different = other.control.truth()
    assert not set(_ids(different)) & set(_ids(truth))


def test_data_set_properties(simulator: SimulatorProcess) -> None:
    truth = simulator.control.truth()
    first, last = SMALL.range_ms()
    now = _ms(simulator.control.now())
    assert now == last, "the clock starts at the end of the range"
    assert 0.85 * 3 * 300 <= len(truth) <= 1.15 * 3 * 300  # three weekdays
    assert all(event_problem(record) is None for record in truth)
    assert all(first <= _ms(r["startTime"]) < last for r in truth)

    inbound = [r for r in truth if r["direction"] == "INBOUND"]
    assert abs(len(inbound) / len(truth) - 0.60) <= 0.05
    settled_inbound = [r for r in inbound if r["state"] in FINAL_STATES]
    missed = sum(r["state"] == "MISSED" for r in settled_inbound) / len(settled_inbound)
    assert abs(missed - 0.15) <= 0.04
    states = Counter(r["state"] for r in truth)
    assert states["REJECTED"] and states["CANCELLED"] and states["DETACHED"]
    assert states["ANSWERED"] > len(truth) / 2

    local_hours = [datetime.fromisoformat(r["startTime"]).hour for r in truth]
    assert sum(8 <= hour < 18 for hour in local_hours) > 0.7 * len(truth)
    midnights = [r for r in truth if r["startTime"].endswith("T00:00:00.000Z")]
    assert len(midnights) >= 3
    ties = Counter(Counter(r["startTime"] for r in truth).values())
    assert sum(n for size, n in ties.items() if 2 <= size <= 5) >= 3

    ids = _ids(truth)
    assert len(set(ids)) == len(ids) and all(isinstance(i, int) and i > 0 for i in ids)
    assert ids != sorted(ids), "ids must not follow time"

    for record in truth:
        assert ("answerTime" in record) == (record["state"] in ANSWERED), record
        if record["state"] in FINAL_STATES:
            assert record["duration"] == _ms(record["endTime"]) - _ms(record["startTime"])
        else:
            assert "endTime" not in record and "duration" not in record
        assert E164.match(record["phoneNumber"]), record["phoneNumber"]
    live = [r for r in truth if r["state"] in LIVE_STATES]
    assert {r["state"] for r in live} >= {"RINGING", "ACTIVE", "HELD"}
    assert all(now - 4 * HOUR_MS <= _ms(r["startTime"]) <= now for r in live)
    assert any(now - _ms(r["startTime"]) < 60_000 for r in live)

    callers = [r.get("callerId", "<absent>") for r in truth]
    assert "<absent>" in callers and None in callers
    assert any(isinstance(c, str) and not c.isascii() for c in callers)
    users = simulator.control.users()
    assert {r["userId"] for r in truth} <= {u["id"] for u in users}
    assert len(users) == SMALL.users


# -- readings --------------------------------------------------------------------------------


def test_first_page_reading_clamps_to_one(fresh_simulator: SimulatorProcess) -> None:
    day = SMALL.range_ms()[0]
    window = {"fromDate": day, "toDate": day + DAY_MS, "size": 10}
    truth = _ids(fresh_simulator.control.truth(day, day + DAY_MS))

    def page(**extra: Any) -> list[Any]:
        with _api(fresh_simulator) as api:
            return _ids(api.get("/self/events", params={**window, **extra}).json())

    assert page() == page(offset=0) == truth[:10]
    assert page(offset=1) == truth[10:20]
    fresh_simulator.control.set_behaviour(first_page=1)
    assert page() == page(offset=0) == page(offset=1) == page(offset=-4) == truth[:10]
    assert page(offset=2) == truth[10:20]


def test_page_cap_is_silent(fresh_simulator: SimulatorProcess) -> None:
    truth = _ids(fresh_simulator.control.truth())
    fresh_simulator.control.set_behaviour(page_cap=7)
    with _api(fresh_simulator) as api:
        assert _ids(api.get("/self/events", params={"size": 50}).json()) == truth[:7]
        assert _ids(api.get("/self/events", params={"size": 50, "offset": 1}).json()) == truth[7:14]
        assert api.get("/self/events/count").json()["count"] == len(truth)


@pytest.mark.parametrize(
    ("edges", "in_before", "in_after"),
    [("half-open", False, True), ("strict", False, False), ("closed", True, True)],
)
def test_edge_readings(
    fresh_simulator: SimulatorProcess, edges: str, in_before: bool, in_after: bool
) -> None:
    edge = SMALL.range_ms()[0] + DAY_MS  # a midnight, where the data set puts events
    on_edge = set(_ids(fresh_simulator.control.truth(edge, edge + 1)))
    assert on_edge, "the data set has events exactly on a midnight"
    fresh_simulator.control.set_behaviour(edges=edges)
    with _api(fresh_simulator) as api:
        for window, expected in (
            ((edge - DAY_MS, edge), in_before),
            ((edge, edge + DAY_MS), in_after),
        ):
            params = {"fromDate": window[0], "toDate": window[1]}
            listed = set(_ids(api.get("/self/events", params={**params, "size": 1000}).json()))
            assert (on_edge <= listed) is expected and (on_edge & listed == set()) is not expected
            counted = api.get("/self/events/count", params=params).json()["count"]
            assert counted == len(listed)


def test_order_sort_and_filters(fresh_simulator: SimulatorProcess) -> None:
    truth = fresh_simulator.control.truth()
    with _api(fresh_simulator) as api:
        descending = api.get("/self/events", params={"size": 1000, "order": "DESC"}).json()
        assert _ids(descending) == _ids(truth)[::-1]
        by_id = api.get("/self/events", params={"size": 1000, "sort": "id"}).json()
        assert _ids(by_id) == sorted(_ids(truth))
        params = {"direction": "INBOUND", "states": "MISSED,REJECTED"}
        filtered = api.get("/self/events", params={**params, "size": 1000}).json()
        expected = [
            r["id"]
            for r in truth
            if r["direction"] == "INBOUND" and r["state"] in {"MISSED", "REJECTED"}
        ]
        assert _ids(filtered) == expected
        assert api.get("/self/events/count", params=params).json()["count"] == len(expected)


def test_unstable_ties_reorder_only_ties(fresh_simulator: SimulatorProcess) -> None:
    truth = fresh_simulator.control.truth()
    with _api(fresh_simulator) as api:
        stable = [_ids(api.get("/self/events", params={"size": 1000}).json()) for _ in range(2)]
        assert stable == [_ids(truth)] * 2
        fresh_simulator.control.set_behaviour(unstable_ties=True, seed=4)
        answers = [api.get("/self/events", params={"size": 1000}).json() for _ in range(4)]
    orders = {tuple(_ids(answer)) for answer in answers}
    assert len(orders) > 1, "tied events must come back in different orders"
    for answer in answers:
        assert [r["startTime"] for r in answer] == [r["startTime"] for r in truth]
        assert sorted(_ids(answer)) == sorted(_ids(truth))


# -- dense instants and sorts ----------------------------------------------------------------

DENSE = SimulatorOptions(
    seed=23,
    start="2026-03-07",  # Saturday, the 23-hour Sunday of the switch to EDT, Monday
    days=3,
    calls_per_day=400,
    users=8,
    tz="America/New_York",
    dense_instants_per_day=3,
    dense_instant_size=250,
)
"""Three New York days, each with three instants of 250 calls at one millisecond."""

DENSE_PAGE = 100
"""Page cap in the dense tests: an instant holds more events than two pages."""


@pytest.fixture(scope="module")
def dense_simulator() -> Iterator[SimulatorProcess]:
    """A simulator of the dense data set, shared by the dense tests."""
    with SimulatorProcess(DENSE) as sim:
        yield sim


@pytest.fixture
def dense(dense_simulator: SimulatorProcess) -> Iterator[SimulatorProcess]:
    """The dense simulator with its behaviour reset before and after."""
    dense_simulator.control.reset_behaviour()
    yield dense_simulator
    dense_simulator.control.reset_behaviour()


def _local_midnights(options: SimulatorOptions) -> list[int]:
    """Epoch ms of the local midnights that start each day, computed with zoneinfo."""
    zone = ZoneInfo(options.tz)
    first = datetime.fromisoformat(options.start)
    days = [first + timedelta(days=n) for n in range(options.days + 1)]
    return [int(day.replace(tzinfo=zone).timestamp() * 1000) for day in days]


def _instants(truth: list[dict[str, Any]], size: int) -> dict[int, list[dict[str, Any]]]:
    """The records of every instant (ms) that holds exactly ``size`` of them."""
    by_instant: dict[int, list[dict[str, Any]]] = {}
    for record in truth:
        by_instant.setdefault(_ms(record["startTime"]), []).append(record)
    return {moment: group for moment, group in by_instant.items() if len(group) == size}


def _pages(api: httpx.Client, params: dict[str, Any], expected: int) -> list[list[dict[str, Any]]]:
    """Every page of ``params`` that ``expected`` events fill, at the dense page size."""
    pages = -(-expected // DENSE_PAGE)
    return [
        api.get("/self/events", params={**params, "size": DENSE_PAGE, "offset": page}).json()
        for page in range(pages)
    ]


def test_dense_instants_are_in_the_truth(dense: SimulatorProcess) -> None:
    truth = dense.control.truth()
    size = DENSE.dense_instant_size
    instants = _instants(truth, size)
    midnights = _local_midnights(DENSE)
    for day in range(DENSE.days):
        today = sorted(t for t in instants if midnights[day] <= t < midnights[day + 1])
        assert len(today) == DENSE.dense_instants_per_day
        assert today[0] == midnights[day], "one instant on the New York midnight"
        directions = [Counter(r["direction"] for r in instants[t]) for t in today]
        assert any(len(mix) == 2 for mix in directions), "an instant of mixed directions"
        ring_all = instants[midnights[day]]
        assert {r["direction"] for r in ring_all} == {"INBOUND"}
        assert Counter(r["state"] for r in ring_all) == {"ANSWERED": 1, "MISSED": size - 1}
    assert all(event_problem(record) is None for record in truth)
    assert len({r["id"] for r in truth}) == len(truth)
    in_process = orjson.loads(Truth.from_options(DENSE).window_bytes(None, None))
    assert in_process == truth, "the in-process truth is the served one"


@pytest.mark.parametrize("edges", ["half-open", "strict", "closed"])
def test_count_around_a_dense_instant(dense: SimulatorProcess, edges: str) -> None:
    instants = _instants(dense.control.truth(), DENSE.dense_instant_size)
    dense.control.set_behaviour(edges=edges)
    with _api(dense) as api:
        for moment, records in instants.items():
            window = {"fromDate": moment - 1, "toDate": moment + 1}
            count = api.get("/self/events/count", params=window).json()["count"]
            assert count == len(records) == DENSE.dense_instant_size
            listed = api.get("/self/events", params={**window, "size": 1000}).json()
            assert sorted(_ids(listed)) == sorted(_ids(records))


def test_id_sorted_pages_cover_a_dense_instant(dense: SimulatorProcess) -> None:
    instants = _instants(dense.control.truth(), DENSE.dense_instant_size)
    dense.control.set_behaviour(unstable_ties=True, page_cap=DENSE_PAGE, seed=5)
    with _api(dense) as api:
        for moment, records in instants.items():
            window = {"fromDate": moment, "toDate": moment + 1}
            for order in ("ASC", "DESC"):
                pages = _pages(api, {**window, "sort": "id", "order": order}, len(records))
                ids = [ident for page in pages for ident in _ids(page)]
                assert ids == sorted(_ids(records), reverse=order == "DESC")
            by_start = _pages(api, window, len(records))
            seen = [ident for page in by_start for ident in _ids(page)]
            assert len(set(seen)) < len(records), "ties on startTime stay unstable"


def test_direction_filter_with_sort(dense: SimulatorProcess) -> None:
    truth = dense.control.truth()
    dense.control.set_behaviour(unstable_ties=True, page_cap=DENSE_PAGE, seed=6)
    with _api(dense) as api:
        for moment, records in _instants(truth, DENSE.dense_instant_size).items():
            for direction in ("INBOUND", "OUTBOUND"):
                wanted = sorted(r["id"] for r in records if r["direction"] == direction)
                params = {"fromDate": moment, "toDate": moment + 1, "direction": direction}
                counted = api.get("/self/events/count", params={**params, "sort": "id"})
                assert counted.json()["count"] == len(wanted)
                pages = _pages(api, {**params, "sort": "id"}, len(wanted))
                assert [ident for page in pages for ident in _ids(page)] == wanted


@pytest.mark.parametrize("direction", [None, "OUTBOUND"])
def test_descending_order_with_unstable_ties(
    dense: SimulatorProcess, direction: str | None
) -> None:
    # An hour either side of the first import (mixed directions), in one page.
    imported = sorted(_instants(dense.control.truth(), DENSE.dense_instant_size))[1]
    window = {"fromDate": imported - HOUR_MS, "toDate": imported + HOUR_MS}
    truth = dense.control.truth(imported - HOUR_MS, imported + HOUR_MS)
    expected = [r for r in truth if direction in (None, r["direction"])]
    assert any(n > 1 for n in Counter(r["startTime"] for r in expected).values())
    params = {**window, "size": 1000, "order": "DESC"}
    if direction is not None:
        params["direction"] = direction
    dense.control.set_behaviour(unstable_ties=True, seed=7)
    with _api(dense) as api:
        answers = [api.get("/self/events", params=params).json() for _ in range(3)]
    assert len({tuple(_ids(answer)) for answer in answers}) > 1, "ties come in new orders"
    for answer in answers:
        assert [r["startTime"] for r in answer] == [r["startTime"] for r in expected][::-1]
        assert sorted(_ids(answer)) == sorted(_ids(expected))


def test_start_time_sort_only_refuses_other_sorts(dense: SimulatorProcess) -> None:
    window = {"fromDate": DENSE.range_ms()[0], "toDate": DENSE.range_ms()[1], "size": 50}
    with _api(dense) as api:
        by_start = api.get("/self/events", params=window).json()
        assert api.get("/self/events", params={**window, "sort": "id"}).status_code == 200
        assert dense.control.set_behaviour(start_time_sort_only=True)["start_time_sort_only"]
        for sort in ("id", "endTime", "direction"):
            _error(api.get("/self/events", params={**window, "sort": sort}), 400, "sort")
            _error(api.get("/self/calls", params={"sort": sort}), 400, "sort")
        _error(api.get("/self/events", params={"sort": "colour"}), 400, "sort")
        assert api.get("/self/events", params={**window, "sort": "startTime"}).json() == by_start
        assert api.get("/self/events", params=window).json() == by_start
        inbound = {**window, "direction": "INBOUND"}
        assert api.get("/self/events/count", params=inbound).json()["count"] > 0


def test_process_puts_its_behaviour_in_force() -> None:
    behaviour = Behaviour(start_time_sort_only=True, unstable_ties=True)
    with SimulatorProcess(SMALL, behaviour=behaviour) as sim, _api(sim) as api:
        assert sim.control.behaviour() == behaviour.to_json()
        _error(api.get("/self/events", params={"sort": "id"}), 400, "sort")


def test_dense_instants_follow_the_clock(dense_simulator: SimulatorProcess) -> None:
    size = DENSE.dense_instant_size
    everything = dense_simulator.control.truth()
    instants = sorted(_instants(everything, size))
    ringing_at = instants[1]  # the first instant after the first midnight
    # A second later: the shortest generated call rings for longer than that.
    now = datetime.fromtimestamp((ringing_at + 1_000) / 1000, UTC).isoformat()
    with SimulatorProcess(replace(DENSE, now=now)) as sim, _api(sim) as api:
        window = {"fromDate": ringing_at, "toDate": ringing_at + 1}
        ringing = api.get("/self/events", params={**window, "size": 1000}).json()
        assert len(ringing) == size and {r["state"] for r in ringing} <= LIVE_STATES
        visible = _instants(sim.control.truth(), size)
        assert sorted(visible) == instants[:2], "instants after the clock are not visible yet"
        sim.control.advance(2 * 3600)
        settled = sim.control.truth(ringing_at, ringing_at + 1)
    assert len(settled) == size and {r["state"] for r in settled} <= FINAL_STATES
    assert _ids(settled) == [r["id"] for r in everything if _ms(r["startTime"]) == ringing_at]


def test_a_hundred_thousand_calls_a_day() -> None:
    options = SimulatorOptions(
        seed=29,
        start="2026-03-03",  # two weekdays
        days=2,
        calls_per_day=100_000,
        tz="America/New_York",
        dense_instants_per_day=2,
        dense_instant_size=3_000,
    )
    dense_calls = options.dense_instants_per_day * options.dense_instant_size
    began = time.monotonic()
    with SimulatorProcess(options) as sim, _api(sim) as api:
        startup = time.monotonic() - began
        midnights = _local_midnights(options)
        for day in range(options.days):
            window = {"fromDate": midnights[day], "toDate": midnights[day + 1]}
            counted = api.get("/self/events/count", params=window).json()["count"]
            # A Poisson day: five standard deviations either side of the mean.
            assert abs(counted - dense_calls - 100_000) <= 5 * 100_000**0.5
            edge = {"fromDate": midnights[day] - 1, "toDate": midnights[day] + 1}
            assert api.get("/self/events/count", params=edge).json()["count"] == 3_000
        assert (
            len(sim.control.truth(midnights[0], midnights[1]))
            == api.get(
                "/self/events/count", params={"fromDate": midnights[0], "toDate": midnights[1]}
            ).json()["count"]
        )
    assert startup < 30, f"generating and listening took {startup:.1f} s"


# -- faults ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["429", "500", "502", "408"])
def test_status_faults(fresh_simulator: SimulatorProcess, kind: str) -> None:
    fresh_simulator.control.set_behaviour(probability=1.0, kinds=[kind], retry_after="7")
    with _api(fresh_simulator) as api:
        answer = api.get("/self/events")
    assert answer.status_code == int(kind)
    assert answer.headers.get("retry-after") == ("7" if kind == "429" else None)
    stats = fresh_simulator.control.stats()
    assert stats["faults"] == {kind: 1}
    assert stats["requests"] == {"listEvents": {kind: 1}}


def test_retry_after_as_http_date(fresh_simulator: SimulatorProcess) -> None:
    date = "Wed, 21 Oct 2015 07:28:00 GMT"
    fresh_simulator.control.set_behaviour(probability=1.0, kinds=["429"], retry_after=date)
    with _api(fresh_simulator) as api:
        assert api.get("/self").headers["retry-after"] == date


def test_slow_fault_answers_late_but_right(fresh_simulator: SimulatorProcess) -> None:
    expected = fresh_simulator.control.truth()[:5]
    fresh_simulator.control.set_behaviour(probability=1.0, kinds=["slow"], slow_seconds=0.6)
    with _api(fresh_simulator) as api:
        began = time.monotonic()
        answer = api.get("/self/events", params={"size": 5})
        waited = time.monotonic() - began
    assert answer.status_code == 200 and answer.json() == expected
    assert waited >= 0.55, "a slow answer comes after the configured delay"
    assert fresh_simulator.control.stats()["faults"] == {"slow": 1}


def test_slow_fault_does_not_hold_up_others(fresh_simulator: SimulatorProcess) -> None:
    control = fresh_simulator.control
    control.set_behaviour(probability=1.0, kinds=["slow"], slow_seconds=3)

    def slow_call() -> httpx.Response:
        with _api(fresh_simulator) as other:
            return other.get("/self")

    with ThreadPoolExecutor(1) as pool, _api(fresh_simulator) as api:
        slow = pool.submit(slow_call)
        deadline = time.monotonic() + 10
        while not control.stats()["faults"] and time.monotonic() < deadline:
            time.sleep(0.02)
        control.set_behaviour(probability=0.0)
        assert api.get("/self/account").status_code == 200
        assert not slow.done(), "a quick request is answered while a slow one waits"
        assert slow.result().status_code == 200
    assert control.stats()["requests"] == {"getAccount": {"200": 1}, "getUser": {"200": 1}}


def test_abandoned_slow_request_is_counted_at_once(fresh_simulator: SimulatorProcess) -> None:
    fresh_simulator.control.set_behaviour(probability=1.0, kinds=["slow"], slow_seconds=30)
    with _api(fresh_simulator) as api, pytest.raises(httpx.ReadTimeout):
        api.get("/self", timeout=0.3)
    assert fresh_simulator.control.stats()["faults"] == {"slow": 1}
    deadline = time.monotonic() + 10
    while not fresh_simulator.control.stats()["requests"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert fresh_simulator.control.stats()["requests"] == {"getUser": {"499": 1}}


def test_truncated_fault_drops_the_connection(fresh_simulator: SimulatorProcess) -> None:
    fresh_simulator.control.set_behaviour(probability=1.0, kinds=["truncated"])
    with _api(fresh_simulator) as api, pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        api.get("/self/events", params={"size": 100})
    assert fresh_simulator.control.stats()["faults"] == {"truncated": 1}


def test_garbage_fault_is_not_json(fresh_simulator: SimulatorProcess) -> None:
    fresh_simulator.control.set_behaviour(probability=1.0, kinds=["garbage"])
    with _api(fresh_simulator) as api:
        answer = api.get("/self/events")
    assert answer.status_code == 200
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(answer.content)
    assert fresh_simulator.control.stats()["faults"] == {"garbage": 1}


def test_faults_are_seeded_and_counted(fresh_simulator: SimulatorProcess) -> None:
    def statuses() -> list[int]:
        fresh_simulator.control.set_behaviour(probability=0.5, kinds=["500", "502"], seed=9)
        with _api(fresh_simulator) as api:
            return [api.get("/self").status_code for _ in range(40)]

    first = statuses()
    assert first == statuses()
    assert 5 <= sum(status != 200 for status in first) <= 35
    stats = fresh_simulator.control.stats()
    assert stats["total"] == 80
    assert sum(stats["faults"].values()) == 2 * sum(status != 200 for status in first)
    assert stats["requests"]["getUser"] == {
        str(status): 2 * n for status, n in Counter(first).items()
    }
    fresh_simulator.control.reset_stats()
    assert fresh_simulator.control.stats() == {
        "total": 0,
        "requests": {},
        "faults": {},
        "tokens": NO_TOKEN_REQUESTS,
    }


def test_behaviour_changes_are_checked(fresh_simulator: SimulatorProcess) -> None:
    control = fresh_simulator.control
    before = control.behaviour()
    for bad in (
        {"colour": "red"},
        {"probability": 2},
        {"kinds": ["404"]},
        {"kinds": []},
        {"first_page": 2},
        {"page_cap": 0},
        {"edges": "open"},
        {"unstable_ties": "yes"},
        {"start_time_sort_only": 1},
        {"retry_after": "soon"},
        {"slow_seconds": -1},
        {"probability": 0.5, "edges": "open"},
    ):
        with pytest.raises(SimulatorError, match="400"):
            control.set_behaviour(**bad)
    assert control.behaviour() == before
    changed = control.set_behaviour(page_cap=5, edges="closed")
    assert (changed["page_cap"], changed["edges"], changed["probability"]) == (5, "closed", 0.0)
    control.reset_behaviour()
    assert control.behaviour() == before


# -- the clock -------------------------------------------------------------------------------


def test_clock_finalises_live_calls_and_reveals_late_ones() -> None:
    options = SimulatorOptions(
        seed=5,
        start="2026-03-02",
        days=3,
        calls_per_day=300,
        users=4,
        tz="America/New_York",
        now="2026-03-04T20:00:00.000Z",
    )
    with SimulatorProcess(options) as sim:
        now = _ms(sim.control.now())
        before = sim.control.truth()
        assert all(_ms(r["startTime"]) <= now for r in before)
        live = [r for r in before if r["state"] in LIVE_STATES]
        assert len(live) >= 3
        assert all("endTime" not in r and "duration" not in r for r in live)
        with _api(sim) as api:
            active = api.get("/self/calls").json()  # states defaults to ACTIVE
            assert active and {call["state"] for call in active} == {"ACTIVE"}
            assert {call["id"] for call in active} == {
                r["id"] for r in live if r["state"] == "ACTIVE"
            }

        assert sim.control.advance(7 * 3600) == "2026-03-05T03:00:00.000Z"
        after = {r["id"]: r for r in sim.control.truth()}
        for record in live:
            final = after[record["id"]]
            assert final["state"] in FINAL_STATES
            assert final["duration"] == _ms(final["endTime"]) - _ms(final["startTime"])
        known = set(_ids(before))
        revealed = [r for r in after.values() if r["id"] not in known and _ms(r["startTime"]) < now]
        assert revealed, "calls that started before the old now but showed up late"
        assert all(now - 6 * HOUR_MS <= _ms(r["startTime"]) for r in revealed)
        with _api(sim) as api:
            assert api.get(f"/self/events/{revealed[0]['id']}").json() == [revealed[0]]

        assert sim.control.set_now("2026-03-04T20:00:00.000Z")
        assert sim.control.truth() == before, "the clock alone decides what is visible"

        starts = {r["startTime"][10:] for r in before}
        assert "T05:00:00.000Z" in starts, "an event on a New York midnight"
        assert "T00:00:00.000Z" in starts, "an event on a UTC midnight"


# -- call control, webhooks, injected records --------------------------------------------------


def test_call_control_keeps_events_consistent(private: SimulatorProcess) -> None:
    control = private.control
    with _api(private) as api:
        now = control.now()
        placed = api.post("/self/calls", json={"phoneNumber": "+14155550123"})
        assert placed.status_code == 201
        call = placed.json()[0]
        assert (call["state"], call["direction"], call["startTime"]) == ("RINGING", "OUTBOUND", now)
        ident = call["id"]
        ringing = api.get("/self/calls", params={"states": "RINGING", "size": 100}).json()
        assert ident in _ids(ringing)
        assert api.get(f"/self/events/{ident}").json()[0]["state"] == "RINGING"
        assert ident in _ids(control.truth())

        _error(api.put(f"/self/calls/{ident}/hold"), 422, "id")
        answered = api.put(f"/self/calls/{ident}/answer").json()
        assert (answered["state"], answered["answerTime"]) == ("ACTIVE", now)
        assert api.put(f"/self/calls/{ident}/hold").json()["state"] == "HELD"
        assert api.delete(f"/self/calls/{ident}/hold").json()["state"] == "ACTIVE"
        inbound = api.get(
            "/self/calls", params={"states": "RINGING", "direction": "INBOUND"}
        ).json()
        assert len(inbound) >= 2, "the data set rings two inbound calls at its first now"
        missed = api.put(f"/self/calls/{inbound[0]['id']}/vmtransfer").json()
        assert missed["state"] == "MISSED" and "answerTime" not in missed
        rejected = api.delete(f"/self/calls/{inbound[1]['id']}").json()[0]
        assert rejected["state"] == "REJECTED"
        later = control.advance(90)
        ended = api.delete(f"/self/calls/{ident}").json()[0]
        assert (ended["state"], ended["endTime"], ended["duration"]) == ("ANSWERED", later, 90_000)
        event = api.get(f"/self/events/{ident}").json()[0]
        assert {k: event[k] for k in ("state", "endTime", "duration", "answerTime")} == {
            "state": "ANSWERED",
            "endTime": later,
            "duration": 90_000,
            "answerTime": now,
        }
        _error(api.put(f"/self/calls/{ident}/answer"), 422, "id")
        _error(api.put("/self/calls/1234/answer"), 404)
        _error(api.post(f"/self/calls/{ident}/transfer", json={}), 422, "phoneNumber")

        truth = {r["id"]: r for r in control.truth()}
        assert truth[inbound[0]["id"]]["state"] == "MISSED"
        assert truth[inbound[1]["id"]]["state"] == "REJECTED"


def test_webhook_lifecycle(private: SimulatorProcess) -> None:
    key = "s3cret-signing-key-0042"
    user = private.control.users()[0]
    with _api(private) as api:
        _error(
            api.post(
                "/self/webhooks", json={"url": "https://x.example", "signingAlgo": "HMAC_SHA256"}
            ),
            422,
            "signingKey",
        )
        _error(api.post("/self/webhooks", content=b"[oops"), 400)
        made = api.post(
            "/self/webhooks",
            json={
                "url": "https://hooks.example/vis",
                "signingKey": key,
                "metadataPolicy": "HEADER",
            },
        )
        assert made.status_code == 201 and key not in made.text
        hook = made.json()
        created = _ms(hook["createdAt"])
        assert created == _ms(private.control.now()) == _ms(hook["renewedAt"])
        assert _ms(hook["expireAt"]) == created + 10 * DAY_MS
        assert _ms(hook["purgeAt"]) == _ms(hook["expireAt"]) + 30 * DAY_MS
        assert (hook["status"], hook["events"], hook["signingAlgo"]) == (
            "ACTIVE",
            ["CALL"],
            "HMAC_SHA256",
        )
        assert hook["statistics"]["failed"] is False and hook["statistics"]["totalAttempts"] == 0
        assert (hook["userId"], hook["accountId"]) == (str(user["id"]), str(user["accountId"]))
        assert api.get(f"/self/webhooks/{hook['id']}").json() == hook
        assert api.get("/self/webhooks").json() == [hook]

        renewed_at = private.control.advance(2 * 86_400)
        renewed = api.put(f"/self/webhooks/{hook['id']}/renew").json()
        assert renewed["renewedAt"] == renewed_at and renewed["createdAt"] == hook["createdAt"]
        assert _ms(renewed["expireAt"]) == _ms(renewed_at) + 10 * DAY_MS
        assert _ms(renewed["purgeAt"]) == _ms(renewed["expireAt"]) + 30 * DAY_MS

        gone = api.delete(f"/self/webhooks/{hook['id']}")
        assert (gone.status_code, gone.content) == (204, b"")
        _error(api.get(f"/self/webhooks/{hook['id']}"), 404)
        _error(api.delete(f"/self/webhooks/{hook['id']}"), 404)
        assert api.get("/self/webhooks").json() == []


def test_injected_records_are_served_as_given(private: SimulatorProcess) -> None:
    first = SMALL.range_ms()[0]
    odd = [
        {
            "id": 7, "type": "CALL", "accountId": 1, "userId": 2, "uciId": 3,
            "direction": "INBOUND", "state": "ANSWERED", "phoneNumber": "+15550001",
            "startTime": "2026-03-03T12:00:00.000Z", "surprise": {"nested": ["ok"]},
        },
        {"id": 8, "type": "CALL", "startTime": "2026-03-03T12:00:00.000Z"},
        {"id": "nine", "startTime": "not a time", "state": 42},
    ]  # fmt: skip
    before = len(private.control.truth())
    private.control.inject(odd)
    truth = private.control.truth()
    assert len(truth) == before + 3
    noon = _ms("2026-03-03T12:00:00.000Z")
    with _api(private) as api:
        at_noon = api.get("/self/events", params={"fromDate": noon, "toDate": noon + 1}).json()
        assert [r for r in at_noon if r["id"] in (7, 8)] == odd[:2]
        at_start = api.get("/self/events", params={"fromDate": first, "toDate": first + 1}).json()
        assert odd[2] in at_start
        assert api.get("/self/events/nine").json() == [odd[2]]
        assert api.get("/self/events/count").json()["count"] == len(truth)
    assert event_problem(odd[1]) is not None, "the second record is invalid on purpose"


def test_stats_count_api_requests_only(fresh_simulator: SimulatorProcess) -> None:
    with _api(fresh_simulator) as api, _api(fresh_simulator, token="wrong") as wrong:
        api.get("/self")
        api.get("/self")
        api.get("/self/events", params={"size": "x"})
        wrong.get("/self/events")
        api.get("/self/none")
    fresh_simulator.control.truth()
    assert fresh_simulator.control.stats() == {
        "total": 5,
        "requests": {
            "getUser": {"200": 2},
            "listEvents": {"400": 1, "401": 1},
            "unknown": {"404": 1},
        },
        "faults": {},
        "tokens": NO_TOKEN_REQUESTS,
    }


# -- the process and its command line ------------------------------------------------------------


def test_child_failure_is_surfaced_with_its_stderr() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        sim = SimulatorProcess(SMALL, port=taken.getsockname()[1])
        with pytest.raises(SimulatorError, match="exited with code") as caught:
            sim.start()
    assert "in use" in str(caught.value)
    sim.stop()  # safe after a failed start


def test_token_stays_out_of_reprs() -> None:
    options = replace(SMALL, token="tok-5ecret-77")
    assert "tok-5ecret-77" not in repr(options)
    assert "tok-5ecret-77" not in repr(SimulatorProcess(options))


def test_command_line_defaults() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    options = options_from_args(parser.parse_args(["--days", "5", "--tz", "Europe/Paris"]))
    expected_start = (datetime.now(UTC).date() - timedelta(days=5)).isoformat()
    assert (options.start, options.days, options.tz, options.now) == (
        expected_start,
        5,
        "Europe/Paris",
        None,
    )
    assert (options.dense_instants_per_day, options.dense_instant_size) == (0, 0)
    given = options_from_args(parser.parse_args(["--start", "2026-01-05", "--seed", "3"]))
    assert (given.start, given.seed) == ("2026-01-05", 3)
    dense = ["--dense-instants-per-day", "4", "--dense-instant-size", "1200"]
    options = options_from_args(parser.parse_args(dense))
    assert (options.dense_instants_per_day, options.dense_instant_size) == (4, 1200)
    command = " ".join(SimulatorProcess(options).command())
    assert " ".join(dense) in command


@pytest.mark.parametrize(
    "settings",
    [{"dense_instants_per_day": 2}, {"dense_instant_size": 10}, {"dense_instants_per_day": -1}],
)
def test_dense_settings_come_together(settings: dict[str, int]) -> None:
    with pytest.raises(OptionsError, match="dense"):
        replace(SMALL, **settings)


def test_started_by_hand_it_says_where_it_listens_its_token_and_a_control_url_that_answers(
    tmp_path: Path,
) -> None:
    with socket.socket() as probe:  # a free port, as a person would pick one
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    leader, follower = pty.openpty()
    argv = [sys.executable, "-m", "vis_pipeline.simulator", "--days", "1", "--port", str(port)]
    argv += ["--token", "hand-token"]
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=follower, cwd=tmp_path)
    os.close(follower)
    try:
        seen = b""
        deadline = time.monotonic() + 60
        while b"control" not in seen and time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 1)
            if ready:
                seen += os.read(leader, 4096)
        text = seen.decode()
        assert f"VIS_BASE_URL=http://127.0.0.1:{port}/" in text
        assert "VIS_ACCESS_TOKEN=hand-token" in text
        control = text.split("control (truth, clock, faults): ")[1].split()[0]
        answer = httpx.get(control, timeout=5)
        assert answer.status_code == 200
        assert {"GET /_simulator/truth", "GET /_simulator/clock"} <= {
            f"{item['method']} {item['path']}" for item in answer.json()
        }
    finally:
        child.send_signal(signal.SIGTERM)
        child.wait(timeout=30)
        os.close(leader)


def test_its_default_port_is_8080() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert parser.parse_args([]).port == 8080
