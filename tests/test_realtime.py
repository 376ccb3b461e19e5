"""Real time end to end, with real processes on loopback: the simulator delivers signed webhooks
to ``vis-pipeline receive``, the drain merges the spool into the warehouse.

What the warehouse must hold comes from the simulator's truth (``control.truth``) turned into
rows independently (``helpers.expected_events``). Each test runs its own processes and stops
them; the simulator's retry interval is shortened so that its retries come within the test.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

import httpx
import orjson
import pandas as pd
import pytest
from helpers import assert_same_events, expected_events, warehouse_events
from receiver_processes import ReceiverProcess

from vis_pipeline import warehouse as wh
from vis_pipeline.client import VISClient
from vis_pipeline.extract import WindowExtractor
from vis_pipeline.live import Drained, drain_spool, warehouse_writer
from vis_pipeline.records import FINAL_STATES, format_instant_ms, parse_instant_ms
from vis_pipeline.simulator.process import SimulatorOptions, SimulatorProcess
from vis_pipeline.spool import Spool, SpoolEntry, SpoolWriter, spool_folder
from vis_pipeline.subscriptions import subscribe
from vis_pipeline.sync import local_day_window, sync_days
from vis_pipeline.webhook_signing import generate_key, key_or_new, key_path

TZ = "UTC"
HOUR_MS = 3_600_000
DAY = date(2026, 3, 3)
OPTIONS = SimulatorOptions(
    seed=13,
    start="2026-03-02",
    days=2,
    calls_per_day=2500,
    users=8,
    token="realtime-token",
    now="2026-03-03T09:00:00.000Z",
)
"""The clock starts at 09:00 on the data's last day: a busy morning is ahead of it."""


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """The webhook folder, its key made."""
    folder = tmp_path / "webhook"
    key_or_new(key_path(folder))
    return folder


@pytest.fixture
def sim() -> Iterator[SimulatorProcess]:
    with SimulatorProcess(OPTIONS) as process:
        yield process


def drain(home: Path, warehouse: Path) -> Drained:
    """One drain of ``home``'s spool into ``warehouse`` (reports left for the end)."""
    return drain_spool(
        Spool(spool_folder(home)), lambda: warehouse_writer(warehouse), TZ, refresh_reports=False
    )


def drain_all(home: Path, warehouse: Path) -> int:
    """Drain until nothing is left; the deliveries read."""
    total = 0
    while read := drain(home, warehouse).deliveries:
        total += read
    return total


def rows_between(path: Path, from_ms: int, to_ms: int) -> pd.DataFrame:
    """``vis.events`` rows (as ``warehouse_events``) that started in [from_ms, to_ms)."""
    frame = warehouse_events(path)
    start = frame["start_time"].map(lambda t: int(t.timestamp() * 1000))
    return frame[(start >= from_ms) & (start < to_ms)].reset_index(drop=True)


def extractor_of(sim: SimulatorProcess) -> tuple[VISClient, WindowExtractor]:
    client = VISClient(sim.base_url, sim.token)
    return client, WindowExtractor(client)


def test_an_hour_of_calls_lands_once_in_its_final_state_and_the_nightly_sync_changes_nothing(
    sim: SimulatorProcess, home: Path, warehouse_path: Path
) -> None:
    sim.control.set_behaviour(
        webhook_duplicate=0.2, webhook_out_of_order=0.1, webhook_hold_back_seconds=0.3, seed=4
    )
    with ReceiverProcess(home) as receiver:
        with VISClient(sim.base_url, sim.token) as client:
            subscribe(client, home, receiver.url)
        start_ms = parse_instant_ms(sim.control.now())
        # The hour in steps, drained as it goes: late deliveries cross drains.
        for _ in range(12):
            sim.control.advance(300)
            drain(home, warehouse_path)
        # Every call of the hour ends, and every late one shows up, within seven hours.
        for _ in range(7):
            sim.control.advance(3600)
            drain(home, warehouse_path)
        sim.control.wait_for_deliveries(60)
        drain_all(home, warehouse_path)
        health = httpx.get(receiver.url.replace("/vis/events", "/healthz")).json()
    end_ms = start_ms + HOUR_MS
    truth = sim.control.truth(start_ms, end_ms)
    assert len(truth) > 150 and all(r["state"] in FINAL_STATES for r in truth)

    log = sim.control.deliveries()["deliveries"]
    delivered = sum(line["kind"] == "delivery" for line in log)
    faults = sim.control.stats()["faults"]
    assert 0.15 < faults["webhook_duplicate"] / delivered < 0.25
    assert 0.07 < faults["webhook_out_of_order"] / delivered < 0.13
    assert health == {"accepted": len(log), "refused": {}}

    hour = rows_between(warehouse_path, start_ms, end_ms)
    assert_same_events(hour, expected_events(truth, TZ))
    with wh.connect(warehouse_path, read_only=True) as conn:
        assert wh.run_check(conn, "unique_event_id").passed
        assert wh.run_check(conn, "raw_matches_events").passed

    # The nightly sync reads the day from the API: what the webhooks landed stands.
    before = warehouse_events(warehouse_path)
    client, extractor = extractor_of(sim)
    with client, extractor:
        (synced,) = sync_days(extractor, lambda: warehouse_writer(warehouse_path), [DAY], TZ)
    assert synced.status == "loaded"  # fetched whole: it holds webhook rows
    after = warehouse_events(warehouse_path)
    assert_same_events(rows_between(warehouse_path, start_ms, end_ms), hour)
    finals = before[before["is_final"]]
    assert_same_events(after[after["event_id"].isin(finals["event_id"])].reset_index(drop=True),
                       finals.reset_index(drop=True))  # fmt: skip
    with wh.connect(warehouse_path, read_only=True) as conn:
        assert [r.ok for r in wh.reconcile(conn, [DAY])] == [True]


PAUSE_AFTER_SPOOL = """
import asyncio, sys
import vis_pipeline.receiver as receiver
_answer = receiver._answer
async def _spooled_then_stuck(send, status, body, headers=None):
    if status == 200:
        print("spooled", flush=True)
        await asyncio.sleep(3600)
    await _answer(send, status, body, headers)
receiver._answer = _spooled_then_stuck
"""
"""Run in the receiver's process by the test: once a delivery is spooled, say so and never
answer, so the test can kill the receiver between the spool write and the answer."""


def signed_post(url: str, key, body: bytes, **headers: str) -> httpx.Response:
    return httpx.post(
        url,
        content=body,
        headers={"X-VON-Signature": key.sign(body), **headers},
        timeout=5,
        trust_env=False,
    )


def test_a_receiver_killed_between_the_spool_write_and_the_answer_loses_nothing(
    home: Path, warehouse_path: Path
) -> None:
    key = key_or_new(key_path(home))
    record = {
        "id": 77, "type": "CALL", "accountId": 1, "userId": 2, "uciId": 3, "direction": "INBOUND",
        "state": "MISSED", "phoneNumber": "+15550100", "startTime": "2026-03-03T10:00:00.000Z",
        "endTime": "2026-03-03T10:00:30.000Z", "duration": 30_000,
    }  # fmt: skip
    body = orjson.dumps(record)
    stuck = ReceiverProcess(home, before=PAUSE_AFTER_SPOOL).start()
    with httpx.Client(trust_env=False) as http:
        pending = http.build_request(
            "POST",
            stuck.url,
            content=body,
            headers={"X-VON-Signature": key.sign(body)},
            timeout=30,
        )
        answers: list[object] = []

        def send() -> None:
            try:
                answers.append(http.send(pending))
            except httpx.HTTPError as exc:
                answers.append(exc)

        sender = threading.Thread(target=send)
        sender.start()
        assert stuck.next_line() == b"spooled"
        stuck.kill()
        sender.join(10)
    # The sender saw no answer: for it the delivery failed, and it will send it again.
    assert isinstance(answers[0], httpx.HTTPError)
    assert [entry.body for entry in Spool(spool_folder(home)).pending().entries] == [body]
    # A new receiver on the same port takes the retry; the drain lands the call once.
    with ReceiverProcess(home, port=stuck.port) as again:
        assert signed_post(again.url, key, body).status_code == 200
    assert drain_all(home, warehouse_path) == 2
    assert_same_events(warehouse_events(warehouse_path), expected_events([record], TZ))


def test_receivers_killed_during_a_burst_lose_no_acknowledged_delivery(
    sim: SimulatorProcess, home: Path, warehouse_path: Path
) -> None:
    # Retries 3 s apart: a receiver killed and started again is back within their 15 s, even
    # on a busy machine.
    sim.control.set_behaviour(webhook_retry_seconds=3.0)
    receiver = ReceiverProcess(home).start()
    with VISClient(sim.base_url, sim.token) as client:
        subscribe(client, home, receiver.url)
    start_ms = parse_instant_ms(sim.control.now())
    kills = 0
    try:
        for _ in range(3):
            sim.control.advance(1200)  # a burst of deliveries
            deadline = time.monotonic() + 10
            while _accepted(receiver) < 20 and time.monotonic() < deadline:
                time.sleep(0.005)
            receiver.kill()
            kills += 1
            receiver = ReceiverProcess(home, port=receiver.port).start()
        sim.control.advance(8 * 3600)
        sim.control.wait_for_deliveries(120)
    finally:
        receiver.stop()
    drain_all(home, warehouse_path)
    log = sim.control.deliveries()["deliveries"]
    acknowledged = {line["event_id"] for line in log if line["outcome"] == "delivered"}
    unanswered = [line for line in log if line["status"] == 0]
    assert kills == 3 and unanswered, "the kills should have cut deliveries short"
    assert not [line for line in log if line["outcome"] == "failed"]
    held = warehouse_events(warehouse_path)
    assert acknowledged <= set(held["event_id"])
    # Every call of the first hour: once, final, as the API has it.
    truth = sim.control.truth(start_ms, start_ms + HOUR_MS)
    assert_same_events(rows_between(warehouse_path, start_ms, start_ms + HOUR_MS),
                       expected_events(truth, TZ))  # fmt: skip
    with wh.connect(warehouse_path, read_only=True) as conn:
        assert wh.run_check(conn, "unique_event_id").passed


def _accepted(receiver: ReceiverProcess) -> int:
    try:
        health = httpx.get(receiver.url.replace("/vis/events", "/healthz"), trust_env=False)
    except httpx.HTTPError:
        return 0
    return int(health.json()["accepted"])


def _spool_records(folder: Path, calls: int) -> list[dict]:
    """Deliveries of ``calls`` calls (each rung, answered twice and ended), into the spool;
    returns the final records."""
    writer = SpoolWriter(folder)
    finals = []
    for first in range(0, calls, 1000):
        entries = []
        for ident in range(first + 1, min(first + 1000, calls) + 1):
            start = format_instant_ms(parse_instant_ms("2026-03-03T08:00:00.000Z") + ident * 997)
            base = {
                "id": ident, "type": "CALL", "accountId": 1, "userId": 2 + ident % 9,
                "uciId": 3, "direction": "INBOUND", "phoneNumber": f"+1555{ident:07d}",
                "startTime": start,
            }  # fmt: skip
            answer = format_instant_ms(parse_instant_ms(start) + 4000)
            end = format_instant_ms(parse_instant_ms(start) + 64000)
            final = {**base, "state": "ANSWERED", "answerTime": answer, "endTime": end,
                     "duration": 64000}  # fmt: skip
            for version in ({**base, "state": "RINGING"}, {**base, "state": "ACTIVE",
                            "answerTime": answer}, final, final):  # fmt: skip
                entries.append(SpoolEntry(ident, orjson.dumps(version)))
            finals.append(final)
        writer.append(entries)
    writer.close()
    return finals


def test_drains_killed_mid_commit_lose_nothing_and_double_nothing(
    home: Path, warehouse_path: Path
) -> None:
    finals = _spool_records(spool_folder(home), 25_000)  # 100,000 deliveries: five batches
    env = {**os.environ, "VIS_WEBHOOK_HOME": str(home), "VIS_WAREHOUSE": str(warehouse_path)}
    command = [sys.executable, "-m", "vis_pipeline.cli", "drain"]
    killed_working = 0
    for pause in (0.05, 0.25, 0.45, 0.65):
        drainer = subprocess.Popen(
            command, cwd=home.parent, env=env, stdout=subprocess.PIPE, text=True
        )
        assert drainer.stdout is not None
        # Once a batch has committed, the next is being read, merged or committed: kill it.
        first = drainer.stdout.readline()
        time.sleep(pause)
        if first.startswith("drained") and drainer.poll() is None:
            os.kill(drainer.pid, signal.SIGKILL)
            killed_working += 1
        drainer.wait()
        drainer.stdout.close()
        with wh.connect(warehouse_path, read_only=True) as conn:
            assert wh.run_check(conn, "unique_event_id").passed
            assert wh.run_check(conn, "raw_matches_events").passed
    assert killed_working >= 3, "the drains should have been killed while they worked"
    assert subprocess.run(command, cwd=home.parent, env=env, check=False).returncode == 0
    assert Spool(spool_folder(home)).pending().entries == []
    assert_same_events(warehouse_events(warehouse_path), expected_events(finals, TZ))


def test_bad_or_missing_signatures_oversize_and_malformed_bodies_are_refused_unwritten(
    sim: SimulatorProcess, home: Path
) -> None:
    key = key_or_new(key_path(home))
    body = orjson.dumps({"id": 1, "type": "CALL", "phoneNumber": "+15559990000"})
    with ReceiverProcess(home) as receiver:
        url = receiver.url
        refused = {
            "bad signature": httpx.post(url, content=body, headers={"X-VON-Signature": "ab" * 32}),
            "missing signature": httpx.post(url, content=body),
            "wrong key": signed_post(url, generate_key(), body),
            "other body": httpx.post(
                url, content=body + b" ", headers={"X-VON-Signature": key.sign(body)}
            ),
            "oversize": signed_post(url, key, b'{"pad": "' + b"x" * 70_000 + b'"}'),
            "oversize, chunked": httpx.post(
                url,
                content=iter([b'{"pad": "', b"x" * 70_000, b'"}']),
                headers={"X-VON-Signature": key.sign(b"anything")},
            ),
            "malformed JSON": signed_post(url, key, b'{"id": 1, "type": '),
            "not an object": signed_post(url, key, b"[1, 2, 3]"),
            "not a POST": httpx.get(url),
        }
        statuses = {name: answer.status_code for name, answer in refused.items()}
        # The simulator's faults: a corrupted signature, a webhook nobody subscribed.
        with VISClient(sim.base_url, sim.token) as client:
            subscribe(client, home, url)
        sim.control.set_behaviour(webhook_bad_signature=1.0, webhook_unknown=1.0, seed=2)
        sim.control.advance(120)
        sim.control.wait_for_deliveries(30)
        log = sim.control.deliveries()["deliveries"]
    assert statuses == {
        "bad signature": 401, "missing signature": 401, "wrong key": 401, "other body": 401,
        "oversize": 413, "oversize, chunked": 413, "malformed JSON": 400, "not an object": 400,
        "not a POST": 405,
    }  # fmt: skip
    forged = [line for line in log if line["kind"] in ("bad_signature", "unknown_webhook")]
    genuine = [line for line in log if line["kind"] == "delivery"]
    assert forged and {line["status"] for line in forged} == {401}
    assert genuine and {line["status"] for line in genuine} == {200}
    # Nothing refused reached the spool: only the genuine deliveries are there.
    spooled = Spool(spool_folder(home)).pending().entries
    assert sorted(e.delivery_id for e in spooled) == sorted(line["delivery_id"] for line in genuine)
    text = receiver.log()
    assert key.value not in text and "+15559990000" not in text and "pad" not in text
    assert "bad signature" in text


def test_a_failed_or_forgotten_webhook_is_restored_by_the_schedule_and_the_gap_synced_exactly(
    sim: SimulatorProcess, home: Path, warehouse_path: Path, dagster_home: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    import dagster as dg

    from vis_pipeline.defs import build_definitions
    from vis_pipeline.defs.jobs import SYNC_JOB
    from vis_pipeline.defs.resources import build_resources
    from vis_pipeline.settings import Settings

    sim.control.set_behaviour(webhook_retry_seconds=0.05)
    monkeypatch.setenv("VIS_ACCESS_TOKEN", sim.token)
    settings = Settings(
        base_url=sim.base_url,
        access_token=sim.token,
        warehouse=str(warehouse_path),
        webhook_home=str(home),
        start_date="2026-03-01",
    )
    receiver = ReceiverProcess(home).start()
    subscribed = subprocess.run(
        [sys.executable, "-m", "vis_pipeline.cli", "webhooks", "subscribe", "--url", receiver.url],
        cwd=home.parent,
        env={**os.environ, "VIS_BASE_URL": sim.base_url, "VIS_WEBHOOK_HOME": str(home)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert key_path(home).read_text().strip() not in subscribed.stdout + subscribed.stderr
    schedule = build_definitions(settings).resolve_schedule_def("webhook_upkeep")
    job = build_definitions(settings).resolve_job_def(SYNC_JOB)
    resources = {"vis": build_resources(settings)["vis"]}

    def tick(instance: dg.DagsterInstance) -> list[dg.RunRequest]:
        moment = datetime.fromisoformat(sim.control.now())
        context = dg.build_schedule_context(
            instance=instance, scheduled_execution_time=moment, resources=resources
        )
        return list(schedule.evaluate_tick(context).run_requests or [])

    with dg.DagsterInstance.get() as instance:
        assert tick(instance) == []  # healthy: nothing to catch up
        sim.control.advance(1800)
        sim.control.wait_for_deliveries(30)
        drain_all(home, warehouse_path)
        receiver.stop()  # down: the next deliveries fail and the webhook is marked failed
        sim.control.advance(1800)
        sim.control.wait_for_deliveries(30)
        with VISClient(sim.base_url, sim.token) as client:
            assert [h["statistics"]["failed"] for h in client.list_webhooks()] == [True]
        sim.control.advance(3600)  # nothing is sent while it is failed
        receiver = ReceiverProcess(home, port=receiver.port).start()
        try:
            (request,) = tick(instance)
            assert request.tags["dagster/asset_partition_range_start"] == DAY.isoformat()
            assert request.tags["dagster/asset_partition_range_end"] == DAY.isoformat()
            assert job.execute_in_process(instance=instance, tags=request.tags).success
            # The day, as the API has it now: exact.
            start, end = local_day_window(DAY, TZ)
            truth = sim.control.truth(int(start.timestamp() * 1000), int(end.timestamp() * 1000))
            assert_same_events(warehouse_events(warehouse_path), expected_events(truth, TZ))
            # Renewed: deliveries come again, and land.
            sim.control.advance(600)
            sim.control.wait_for_deliveries(30)
            assert drain(home, warehouse_path).events > 0
            assert tick(instance) == []
            # The API forgets the webhook: the schedule subscribes again and catches up.
            with VISClient(sim.base_url, sim.token) as client:
                (hook,) = client.list_webhooks()
                client.destroy_webhook(hook["id"])
            sim.control.advance(1800)
            (request,) = tick(instance)
            assert job.execute_in_process(instance=instance, tags=request.tags).success
            truth = sim.control.truth(int(start.timestamp() * 1000), int(end.timestamp() * 1000))
            assert_same_events(warehouse_events(warehouse_path), expected_events(truth, TZ))
            with VISClient(sim.base_url, sim.token) as client:
                assert [h["url"] for h in client.list_webhooks()] == [hook["url"]]
            sim.control.advance(600)
            sim.control.wait_for_deliveries(30)
            assert drain(home, warehouse_path).events > 0
        finally:
            receiver.stop()
