"""The simulator's webhook deliveries: what the clock sends, signed how, retried how, faulted how.

A small HTTP server in the test records every request (it shares no code with the simulator or
the pipeline): the signatures are checked with ``hmac`` here, the bodies against the truth.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import orjson
import pytest

from vis_pipeline.records import FINAL_STATES, parse_instant_ms
from vis_pipeline.simulator.process import SimulatorOptions, SimulatorProcess

OPTIONS = SimulatorOptions(
    seed=5, start="2026-03-02", days=2, calls_per_day=1500, users=5, now="2026-03-03T09:00:00.000Z"
)
"""The clock starts at 09:00 on the last day, so moving it on delivers a busy morning."""

KEY = "test-signing-key-7f3a"
HOUR = 3600


class Recorder:
    """A loopback HTTP server that records every POST and answers with ``status``."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.status = 200
        self.lock = threading.Lock()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                with recorder.lock:
                    recorder.requests.append({"headers": dict(self.headers), "body": body})
                self.send_response(recorder.status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def sim() -> Iterator[SimulatorProcess]:
    """A simulator of its own per test: webhooks and the clock are its state."""
    with SimulatorProcess(OPTIONS) as process:
        yield process


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    server = Recorder()
    yield server
    server.close()


def _api(sim: SimulatorProcess) -> httpx.Client:
    return httpx.Client(
        base_url=sim.base_url, headers={"Authorization": f"Bearer {sim.token}"}, trust_env=False
    )


def _subscribe(sim: SimulatorProcess, url: str, policy: str = "HEADER") -> dict[str, Any]:
    with _api(sim) as api:
        answer = api.post(
            "/self/webhooks", json={"url": url, "signingKey": KEY, "metadataPolicy": policy}
        )
    assert answer.status_code == 201
    return answer.json()


def _webhook(sim: SimulatorProcess, webhook_id: str) -> dict[str, Any]:
    with _api(sim) as api:
        return api.get(f"/self/webhooks/{webhook_id}").json()


def _hmac(body: bytes, key: str = KEY) -> str:
    return hmac.new(key.encode(), body, hashlib.sha256).hexdigest()


def _moments(record: dict[str, Any], shown_ms: int) -> list[int]:
    """When a call whose final record is ``record`` changes, read independently of the
    simulator: it appears (starts, or shows up late at ``shown_ms``), is answered, ends."""
    start = parse_instant_ms(record["startTime"])
    appear = max(start, shown_ms)
    later = [parse_instant_ms(record[name]) for name in ("answerTime", "endTime") if name in record]
    return [appear, *(moment for moment in later if moment > appear)]


def test_the_clock_delivers_every_change_once_signed_and_as_the_api_reads_it(
    sim: SimulatorProcess, recorder: Recorder
) -> None:
    hook = _subscribe(sim, recorder.url)
    start_ms = parse_instant_ms(sim.control.now())
    for _ in range(4):
        sim.control.advance(HOUR / 4)
    sim.control.wait_for_deliveries()
    end_ms = start_ms + HOUR * 1000
    # What listEvents shows at the end of the hour (calls that show up late are not there yet).
    final = {r["id"]: r for r in sim.control.truth(start_ms - 4 * HOUR * 1000, end_ms)}

    received: dict[tuple[int, str], dict[str, Any]] = {}
    for request in recorder.requests:
        headers, body = request["headers"], request["body"]
        assert headers["X-VON-Signature"] == _hmac(body)
        assert headers["X-VON-Webhook-Id"] == hook["id"]
        record = orjson.loads(body)
        key = (record["id"], record["state"])
        assert key not in received, f"{key} delivered twice"
        received[key] = record

    finished_in_hour = {
        ident: record
        for ident, record in final.items()
        if record["state"] in FINAL_STATES
        and start_ms < parse_instant_ms(record["endTime"]) <= end_ms
    }
    assert len(finished_in_hour) > 100
    for ident, record in finished_in_hour.items():
        assert received[(ident, record["state"])] == record
    # Nothing after the hour, and live records only of calls that were live then.
    for (ident, state), record in received.items():
        assert ident in final
        if state not in FINAL_STATES:
            assert "endTime" not in record and record["startTime"] == final[ident]["startTime"]
    started_in_hour = [
        r for r in final.values() if start_ms < parse_instant_ms(r["startTime"]) <= end_ms
    ]
    appeared = {ident for ident, _state in received}
    assert {r["id"] for r in started_in_hour} <= appeared
    statistics = _webhook(sim, hook["id"])["statistics"]
    assert statistics["totalAttempts"] == statistics["totalSuccesses"] == len(recorder.requests)
    assert (statistics["totalFailures"], statistics["failed"]) == (0, False)


def test_each_call_is_delivered_when_it_appears_is_answered_and_ends(
    sim: SimulatorProcess, recorder: Recorder
) -> None:
    _subscribe(sim, recorder.url)
    start_ms = parse_instant_ms(sim.control.now())
    sim.control.advance(HOUR)
    sim.control.wait_for_deliveries()
    end_ms = start_ms + HOUR * 1000
    in_hour = sim.control.deliveries()["next"]
    sim.control.advance(8 * HOUR)  # every call of the hour is over and has shown up
    sim.control.wait_for_deliveries()
    truth = sim.control.truth(start_ms, end_ms)
    log = [line for line in sim.control.deliveries()["deliveries"] if line["kind"] == "delivery"]
    delivered: dict[int, list[int]] = {}
    for line in sorted(log, key=lambda line: line["moment"]):
        delivered.setdefault(line["event_id"], []).append(parse_instant_ms(line["moment"]))
    assert in_hour == sum(parse_instant_ms(line["moment"]) <= end_ms for line in log)
    expected_total = 0
    for record in truth:
        # A call that shows up late shows up some time after it started: the log says when.
        shown = delivered[record["id"]][0]
        expected = _moments(record, shown)
        expected_total += sum(start_ms < moment <= end_ms for moment in expected)
        assert delivered[record["id"]] == expected, record["id"]
    assert expected_total > 300


def test_metadata_policies_body_and_none(sim: SimulatorProcess, recorder: Recorder) -> None:
    body_hook = _subscribe(sim, recorder.url + "/body", "BODY")
    none_hook = _subscribe(sim, recorder.url + "/none", "NONE")
    sim.control.advance(300)
    sim.control.wait_for_deliveries()
    by_hook = {body_hook["id"]: [], none_hook["id"]: []}
    for line in sim.control.deliveries()["deliveries"]:
        by_hook[line["webhook_id"]].append(line)
    assert by_hook[body_hook["id"]] and len(by_hook[body_hook["id"]]) == len(
        by_hook[none_hook["id"]]
    )
    for request in recorder.requests:
        headers, body = request["headers"], request["body"]
        assert "X-VON-Signature" not in headers and "X-VON-Webhook-Id" not in headers
        parsed = orjson.loads(body)
        if "metadata" in parsed:
            event = body[body.index(b'"event":') + len(b'"event":') : -1]
            assert parsed["metadata"]["signature"] == _hmac(event)
            assert parsed["metadata"]["webhookId"] == body_hook["id"]
            assert orjson.loads(event) == parsed["event"]
        else:
            assert parsed["type"] == "CALL"


def test_a_failing_receiver_gets_five_retries_then_the_webhook_is_failed_until_renewed(
    sim: SimulatorProcess, recorder: Recorder
) -> None:
    sim.control.set_behaviour(webhook_retry_seconds=0.05)
    recorder.status = 500
    hook = _subscribe(sim, recorder.url)
    sim.control.advance(60)
    sim.control.wait_for_deliveries()
    statistics = _webhook(sim, hook["id"])["statistics"]
    assert statistics["failed"] is True
    log = sim.control.deliveries()["deliveries"]
    attempts = [line for line in log if line["outcome"] in ("delivered", "retrying", "failed")]
    # Deliveries retried side by side may reach their last attempt together.
    gave_up = {line["delivery_id"] for line in attempts if line["outcome"] == "failed"}
    assert gave_up
    for delivery_id in gave_up:
        tries = [line["attempt"] for line in attempts if line["delivery_id"] == delivery_id]
        assert tries == [1, 2, 3, 4, 5, 6]
    assert max(line["attempt"] for line in attempts) == 6
    assert statistics["totalAttempts"] == statistics["totalFailures"] == len(attempts)
    assert statistics["totalSuccesses"] == 0

    # Failed: the clock runs, nothing is sent.
    seen = len(recorder.requests)
    sim.control.advance(600)
    sim.control.wait_for_deliveries()
    assert len(recorder.requests) == seen

    recorder.status = 200
    with _api(sim) as api:
        assert api.put(f"/self/webhooks/{hook['id']}/renew").json()["statistics"]["failed"] is False
    sim.control.advance(600)
    sim.control.wait_for_deliveries()
    assert len(recorder.requests) > seen
    assert (
        _webhook(sim, hook["id"])["statistics"]["totalSuccesses"] == len(recorder.requests) - seen
    )


def test_nothing_is_delivered_for_moments_after_expire_at(recorder: Recorder) -> None:
    # Subscribed ten days before the data's last morning, so it expires at 09:00 that day.
    quiet = replace(OPTIONS, calls_per_day=150, now="2026-02-21T09:00:00.000Z")
    with SimulatorProcess(quiet) as sim:
        hook = _subscribe(sim, recorder.url)
        expire_ms = parse_instant_ms(hook["expireAt"])
        assert hook["expireAt"] == "2026-03-03T09:00:00.000Z"
        sim.control.set_now("2026-03-03T07:00:00.000Z")
        sim.control.wait_for_deliveries()
        since = sim.control.deliveries()["next"]
        sim.control.advance(3 * HOUR)
        sim.control.wait_for_deliveries()
        moments = [
            parse_instant_ms(line["moment"]) for line in sim.control.deliveries(since)["deliveries"]
        ]
        assert moments and all(moment < expire_ms for moment in moments)
        # There was something to deliver after expiry: calls that started after 09:00.
        later = sim.control.truth(expire_ms, expire_ms + HOUR * 1000)
        assert later


def test_delivery_faults_on_demand(sim: SimulatorProcess, recorder: Recorder) -> None:
    hook = _subscribe(sim, recorder.url)
    sim.control.set_behaviour(
        webhook_duplicate=0.2,
        webhook_out_of_order=0.1,
        webhook_bad_signature=0.05,
        webhook_unknown=0.05,
        webhook_hold_back_seconds=0.3,
        seed=3,
    )
    sim.control.advance(HOUR)
    sim.control.wait_for_deliveries()
    faults = sim.control.stats()["faults"]
    log = sim.control.deliveries()["deliveries"]
    kinds = {kind: sum(line["kind"] == kind for line in log) for kind in
             ("delivery", "duplicate", "bad_signature", "unknown_webhook")}  # fmt: skip
    assert kinds["duplicate"] == faults["webhook_duplicate"] > 0.1 * kinds["delivery"]
    assert kinds["bad_signature"] == faults["webhook_bad_signature"] > 0
    assert kinds["unknown_webhook"] == faults["webhook_unknown"] > 0
    assert faults["webhook_out_of_order"] > 0.05 * kinds["delivery"]

    good = bad = unknown = 0
    order: list[str] = []
    for request in recorder.requests:
        headers, body = request["headers"], request["body"]
        order.append(headers["X-VON-Timestamp"])
        if headers["X-VON-Webhook-Id"] != hook["id"]:
            unknown += 1
            assert headers["X-VON-Signature"] != _hmac(body)
        elif headers["X-VON-Signature"] != _hmac(body):
            bad += 1
        else:
            good += 1
    assert (unknown, bad) == (kinds["unknown_webhook"], kinds["bad_signature"])
    assert good == kinds["delivery"] + kinds["duplicate"]
    # Held-back deliveries arrive after later changes.
    assert order != sorted(order)
    # The webhook's statistics count its own deliveries, not the forged copies.
    assert _webhook(sim, hook["id"])["statistics"]["totalAttempts"] == good


def test_call_control_delivers_the_call_placed_answered_and_ended_but_not_holds(
    sim: SimulatorProcess, recorder: Recorder
) -> None:
    _subscribe(sim, recorder.url)
    with _api(sim) as api:
        call = api.post("/self/calls", json={"phoneNumber": "+15550123"}).json()[0]
        ident = call["id"]
        sim.control.advance(5)
        api.put(f"/self/calls/{ident}/answer")
        sim.control.advance(5)
        api.put(f"/self/calls/{ident}/hold")
        api.put(f"/self/calls/{ident}/unhold")
        sim.control.advance(5)
        api.delete(f"/self/calls/{ident}")
    sim.control.wait_for_deliveries()
    states = [
        orjson.loads(r["body"])["state"]
        for r in recorder.requests
        if orjson.loads(r["body"])["id"] == ident
    ]
    assert states == ["RINGING", "ACTIVE", "ANSWERED"]
