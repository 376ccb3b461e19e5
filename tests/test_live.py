"""Draining the spool into the warehouse: plain functions, records written to the spool here.

What the warehouse must hold is computed independently (``helpers.expected_events``, with
``datetime``) from the record the test says is the latest.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import duckdb
import orjson
import pytest
from helpers import SMALL, assert_same_events, expected_events, make_event, warehouse_events

from vis_pipeline import warehouse as wh
from vis_pipeline.client import VISClient
from vis_pipeline.extract import WindowExtractor
from vis_pipeline.live import drain_spool
from vis_pipeline.simulator.process import SimulatorProcess
from vis_pipeline.spool import Spool, SpoolEntry, SpoolWriter
from vis_pipeline.sync import local_day_window, sync_days

TZ = "UTC"
START = "2026-03-03T10:00:00.000Z"


def ringing(event_id: int) -> dict:
    return make_event(event_id, START, "RINGING")


def active(event_id: int) -> dict:
    return make_event(event_id, START, "ACTIVE", answerTime="2026-03-03T10:00:05.000Z")


def answered(event_id: int) -> dict:
    return make_event(
        event_id,
        START,
        "ANSWERED",
        answerTime="2026-03-03T10:00:05.000Z",
        endTime="2026-03-03T10:02:05.000Z",
        duration=125_000,
    )


@pytest.fixture
def spool_path(tmp_path: Path) -> Path:
    return tmp_path / "spool"


def spooled(folder: Path, records: list[dict]) -> None:
    """Append ``records`` to the spool as the receiver would, one delivery each."""
    writer = SpoolWriter(folder)
    writer.append(
        [SpoolEntry(1_000 + i, orjson.dumps(r), f"d-{i}", "1") for i, r in enumerate(records)]
    )
    writer.close()


def opener(path: Path):
    @contextmanager
    def open_warehouse() -> Iterator[duckdb.DuckDBPyConnection]:
        with wh.connect(path) as conn:
            yield conn

    return open_warehouse


def test_repeated_and_overtaken_deliveries_land_once_in_their_latest_state(
    spool_path: Path, warehouse_path: Path
) -> None:
    # In one batch: the answer arrives before the ring, the end twice, another call rings.
    spooled(spool_path, [active(1), answered(1), ringing(1), answered(1), ringing(2)])
    drained = drain_spool(Spool(spool_path), opener(warehouse_path), TZ)
    assert (drained.deliveries, drained.events, drained.inserted) == (5, 2, 2)
    assert_same_events(
        warehouse_events(warehouse_path), expected_events([answered(1), ringing(2)], TZ)
    )
    # Across batches: a later batch brings an older version of each (ring after answer).
    spooled(spool_path, [ringing(1), active(2), ringing(2)])
    drained = drain_spool(Spool(spool_path), opener(warehouse_path), TZ)
    assert (drained.events, drained.stale) == (1, 1)
    expected = expected_events([answered(1), active(2)], TZ)
    assert_same_events(warehouse_events(warehouse_path), expected)
    with wh.connect(warehouse_path, read_only=True) as conn:
        landings = conn.execute(
            "SELECT event_id, state, deliveries FROM vis.webhook_landings ORDER BY 1"
        ).fetchall()
        assert wh.run_check(conn, "unique_event_id").passed
        assert wh.run_check(conn, "raw_matches_events").passed
        reports = conn.execute("SELECT total_calls FROM reports.daily_call_volume").fetchall()
    assert landings == [(1, "ANSWERED", 4), (2, "ACTIVE", 3)]
    assert sum(row[0] for row in reports) == 2


def test_a_drain_killed_between_its_commit_and_the_offsets_loses_and_doubles_nothing(
    spool_path: Path, warehouse_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    records = [answered(i) for i in range(1, 40)] + [ringing(i) for i in range(40, 60)]
    spooled(spool_path, records)

    def crash(self: Spool, ends: dict[str, int]) -> None:
        raise KeyboardInterrupt("killed after the warehouse committed")

    with monkeypatch.context() as patch:
        patch.setattr(Spool, "commit", crash)
        with pytest.raises(KeyboardInterrupt):
            drain_spool(Spool(spool_path), opener(warehouse_path), TZ)
    assert_same_events(warehouse_events(warehouse_path), expected_events(records, TZ))
    # The records are still pending: drained again, they change nothing.
    again = drain_spool(Spool(spool_path), opener(warehouse_path), TZ)
    assert again.deliveries == len(records)
    assert_same_events(warehouse_events(warehouse_path), expected_events(records, TZ))
    assert Spool(spool_path).segments() == []
    assert drain_spool(Spool(spool_path), opener(warehouse_path), TZ).deliveries == 0


def test_a_record_that_is_not_an_event_is_quarantined_under_its_day(
    spool_path: Path, warehouse_path: Path
) -> None:
    broken = {**answered(7), "state": "EXPLODED"}
    spooled(spool_path, [broken, answered(8)])
    drained = drain_spool(Spool(spool_path), opener(warehouse_path), TZ)
    assert (drained.events, drained.rejected) == (1, 1)
    with wh.connect(warehouse_path, read_only=True) as conn:
        rows = conn.execute(
            "SELECT event_id, local_date, reason, window_start FROM vis.rejected_events"
        ).fetchall()
    start, _ = local_day_window(date(2026, 3, 3), TZ)
    assert rows == [(7, date(2026, 3, 3), "state: unknown value 'EXPLODED'", start)]


def test_a_day_with_webhook_rows_since_its_sync_is_fetched_again_and_repaired(
    fresh_simulator: SimulatorProcess, warehouse_path: Path, spool_path: Path
) -> None:
    sim = fresh_simulator
    day = date.fromisoformat(SMALL.start)
    start, end = local_day_window(day, TZ)
    truth = sim.control.truth(int(start.timestamp() * 1000), int(end.timestamp() * 1000))
    with VISClient(sim.base_url, sim.token) as client, WindowExtractor(client) as extractor:
        assert sync_days(extractor, opener(warehouse_path), [day], TZ)[0].status == "loaded"
        assert sync_days(extractor, opener(warehouse_path), [day], TZ)[0].status == "settled"
        # A delivery whose final record disagrees with the API's: the counts do not change.
        wrong = {**truth[0], "duration": truth[0]["duration"] + 1, "callerId": "not the API's"}
        spooled(spool_path, [wrong])
        assert drain_spool(Spool(spool_path), opener(warehouse_path), TZ).events == 1
        with wh.connect(warehouse_path, read_only=True) as conn:
            assert [r.ok for r in wh.reconcile(conn, [day])] == [True]
        # The counts alone would call the day settled; its webhook row makes the sync fetch it.
        assert sync_days(extractor, opener(warehouse_path), [day], TZ)[0].status == "loaded"
        assert_same_events(warehouse_events(warehouse_path), expected_events(truth, TZ))
        # Checked against the API since: settled again.
        assert sync_days(extractor, opener(warehouse_path), [day], TZ)[0].status == "settled"


def test_the_sync_repairs_what_the_webhooks_missed(
    fresh_simulator: SimulatorProcess, warehouse_path: Path, spool_path: Path
) -> None:
    sim = fresh_simulator
    day = date.fromisoformat(SMALL.start)
    start, end = local_day_window(day, TZ)
    truth = sim.control.truth(int(start.timestamp() * 1000), int(end.timestamp() * 1000))
    # The webhooks brought a tenth of the calls, each only as it started ringing.
    spooled(spool_path, [{**r, "state": "RINGING"} for r in truth[::10]])
    drain_spool(Spool(spool_path), opener(warehouse_path), TZ)
    assert len(warehouse_events(warehouse_path)) == len(truth[::10])
    with VISClient(sim.base_url, sim.token) as client, WindowExtractor(client) as extractor:
        assert sync_days(extractor, opener(warehouse_path), [day], TZ)[0].status == "loaded"
    assert_same_events(warehouse_events(warehouse_path), expected_events(truth, TZ))
