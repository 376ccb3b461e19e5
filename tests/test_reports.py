"""Report tables against figures computed here, independently, from the simulator's truth.

The warehouse is built through the real pipeline (VISClient + sync_days against a simulator in
New York time, over the 2026-03-08 clock change); the expected figures are computed with
``datetime`` and pandas from the API records the simulator holds, never with the project's SQL.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import dagster as dg
import duckdb
import pandas as pd
import pytest
from helpers import (
    ANSWERED,
    FIRST,
    LAST,
    OPTIONS,
    TZ,
    UNKNOWN_USER,
    Built,
    build_warehouse,
    copy_warehouse,
    expected_events,
    planted_id,
)

from vis_pipeline import warehouse as wh
from vis_pipeline.defs.daily_sync import build_sync_asset
from vis_pipeline.defs.reports import EXPORT, REPORT_TABLES, build_export_asset
from vis_pipeline.defs.resources import build_resources
from vis_pipeline.reports import (
    REPORTS,
    ReportError,
    materialize_reports,
    read_report,
    recomputed_range,
)
from vis_pipeline.settings import Settings
from vis_pipeline.simulator.process import SimulatorProcess
from vis_pipeline.sync import days_between, local_day_window

DST_DAY = date(2026, 3, 8)

# Tolerances match the rounding the report tables apply (4, 3 and 2 decimals).
RATE_TOL, SECONDS_TOL, HOURS_TOL = 6e-5, 6e-4, 6e-3


# ----------------------------------------------------------------------------------------------
# Building a warehouse through the pipeline


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    """A New York warehouse over the spring clock change, reports materialised."""
    path = tmp_path_factory.mktemp("reports") / "warehouse.sqlite"
    with SimulatorProcess(OPTIONS) as sim:
        result = build_warehouse(sim, path, FIRST, LAST, TZ)
    with wh.connect(path) as conn:
        materialize_reports(conn, FIRST, LAST, TZ)
    yield result


@pytest.fixture
def conn(built: Built) -> Iterator[duckdb.DuckDBPyConnection]:
    with wh.connect(built.path, read_only=True) as connection:
        connection.execute("SET TimeZone = 'UTC'")
        yield connection


# ----------------------------------------------------------------------------------------------
# The expected figures, from the API records


def truth_events(built: Built) -> pd.DataFrame:
    """One row per call with the local hour and talk/answer seconds, from the API records."""
    events = expected_events(built.truth, built.tz)
    zone = ZoneInfo(built.tz)
    starts = [datetime.fromisoformat(r["startTime"]) for r in built.truth]
    hour_of = {r["id"]: s.astimezone(zone).hour for r, s in zip(built.truth, starts, strict=True)}
    events["local_hour"] = events["event_id"].map(hour_of)

    def seconds(later: object, earlier: object, state: str) -> float | None:
        if state not in ANSWERED or pd.isna(later) or pd.isna(earlier):
            return None
        return (pd.Timestamp(later) - pd.Timestamp(earlier)).total_seconds()

    events["talk_seconds"] = [
        seconds(e, a, s)
        for e, a, s in zip(events["end_time"], events["answer_time"], events["state"], strict=True)
    ]
    events["answer_seconds"] = [
        seconds(a, st, s)
        for a, st, s in zip(
            events["answer_time"], events["start_time"], events["state"], strict=True
        )
    ]
    names = {u["id"]: f"{u['firstName']} {u['lastName']}" for u in built.users}
    events["user_name"] = events["user_id"].map(names)
    return events


def _quantile(values: pd.Series, q: float) -> float | None:
    clean = values.dropna().astype(float)
    # pandas' default (linear interpolation) is DuckDB's quantile_cont.
    return float(clean.quantile(q)) if len(clean) else None


def _mean(values: pd.Series) -> float | None:
    clean = values.dropna().astype(float)
    return float(clean.mean()) if len(clean) else None


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def expected_volume(events: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    rows = []
    for key, group in events.groupby(by, sort=True):
        answered = group[group["state"].isin(ANSWERED)]
        live = int((~group["is_final"]).sum())
        hours = group["local_hour"].value_counts()
        row = dict(zip(by, key, strict=True))
        row.update(
            total_calls=len(group),
            answered_calls=len(answered),
            missed_calls=int((group["state"] == "MISSED").sum()),
            rejected_calls=int((group["state"] == "REJECTED").sum()),
            cancelled_calls=int((group["state"] == "CANCELLED").sum()),
            live_calls=live,
            answer_rate=_ratio(len(answered), len(group) - live),
            talk_seconds_total=float(answered["talk_seconds"].dropna().sum()),
            talk_seconds_mean=_mean(answered["talk_seconds"]),
            talk_seconds_p50=_quantile(answered["talk_seconds"], 0.5),
            talk_seconds_p90=_quantile(answered["talk_seconds"], 0.9),
            answer_seconds_mean=_mean(answered["answer_seconds"]),
            answer_seconds_p90=_quantile(answered["answer_seconds"], 0.9),
            busiest_hour=min(h for h, n in hours.items() if n == hours.max()),
        )
        if "user_id" in by:
            row["user_name"] = group["user_name"].iloc[0]
        rows.append(row)
    return pd.DataFrame(rows)


def expected_missed(events: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    inbound = events[events["direction"] == "INBOUND"]
    rows = []
    for key, group in inbound.groupby(by, sort=True):
        missed = int((group["state"] == "MISSED").sum())
        row = dict(zip(by, key, strict=True))
        row.update(
            inbound_calls=len(group),
            missed_calls=missed,
            live_calls=int((~group["is_final"]).sum()),
            missed_rate=_ratio(missed, int(group["is_final"].sum())),
        )
        if "user_id" in by:
            row["user_name"] = group["user_name"].iloc[0]
        rows.append(row)
    return pd.DataFrame(rows)


def expected_unreturned(events: pd.DataFrame, callback_hours: int) -> pd.DataFrame:
    """Missed inbound calls with no qualifying callback, by plain loops over the calls."""
    window = timedelta(hours=callback_hours)
    as_of = events["start_time"].max()
    callbacks: dict[str, list[datetime]] = {}
    for call in events.itertuples():
        if call.direction == "OUTBOUND" or call.state in ANSWERED:
            callbacks.setdefault(call.phone_number, []).append(call.start_time)
    rows = []
    for call in events.itertuples():
        if call.direction != "INBOUND" or call.state != "MISSED":
            continue
        start = call.start_time
        if any(start < t <= start + window for t in callbacks.get(call.phone_number, [])):
            continue
        rows.append(
            {
                "event_id": call.event_id,
                "local_date": call.local_date,
                "start_time": start,
                "caller_id": call.caller_id,
                "phone_number": call.phone_number,
                "user_id": call.user_id,
                "user_name": call.user_name,
                "callback_deadline": start + window,
                "window_closed": as_of >= start + window,
                "as_of": as_of,
                "waited_hours": (as_of - start).total_seconds() / 3600,
            }
        )
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------------
# Comparing


def _plain(value: object) -> object:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if isinstance(value, pd.Timestamp):
        if value.tzinfo is None:
            return value.date() if value == value.normalize() else value.to_pydatetime()
        return value.to_pydatetime().astimezone(UTC)
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value
    if hasattr(value, "item"):
        return value.item()
    return value


TOLERANCES = {
    "answer_rate": RATE_TOL,
    "missed_rate": RATE_TOL,
    "waited_hours": HOURS_TOL,
}


def _tolerance(column: str) -> float:
    if column in TOLERANCES:
        return TOLERANCES[column]
    return SECONDS_TOL if "seconds" in column else 0.0


def assert_report_matches(actual: pd.DataFrame, expected: pd.DataFrame, key: list[str]) -> None:
    """Same keys, and every column of ``expected`` equal (floats within the rounding)."""
    assert len(actual) == len(expected), f"{len(actual)} rows, expected {len(expected)}"
    columns = list(expected.columns)
    got = [
        {c: _plain(v) for c, v in row.items()}
        for row in actual[columns].sort_values(key).to_dict("records")
    ]
    want = [
        {c: _plain(v) for c, v in row.items()}
        for row in expected.sort_values(key).to_dict("records")
    ]
    for got_row, want_row in zip(got, want, strict=True):
        for column in columns:
            a, b = got_row[column], want_row[column]
            where = f"{column} at {[want_row[k] for k in key]}"
            if isinstance(b, float) and a is not None:
                assert math.isclose(a, b, abs_tol=_tolerance(column) + 1e-9), (where, a, b)
            else:
                assert a == b, (where, a, b)


# ----------------------------------------------------------------------------------------------
# The reports


def test_daily_call_volume_matches_the_truth(built: Built, conn: duckdb.DuckDBPyConnection) -> None:
    expected = expected_volume(truth_events(built), ["local_date", "direction"])
    actual = read_report(conn, "daily_call_volume", FIRST, LAST)
    assert_report_matches(actual, expected, ["local_date", "direction"])
    # The data set has calls still in progress at the clock, all on the last day.
    assert actual["live_calls"].sum() > 0
    assert set(actual.loc[actual["live_calls"] > 0, "local_date"]) == {LAST}


def test_daily_call_volume_by_user_matches_the_truth(
    built: Built, conn: duckdb.DuckDBPyConnection
) -> None:
    key = ["local_date", "user_id", "direction"]
    expected = expected_volume(truth_events(built), key)
    actual = read_report(conn, "daily_call_volume_by_user", FIRST, LAST)
    assert_report_matches(actual, expected, key)
    assert actual.loc[actual["user_id"] == UNKNOWN_USER, "user_name"].isna().all()
    assert actual.loc[actual["user_id"] != UNKNOWN_USER, "user_name"].notna().all()


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("missed_calls", ["local_date"]),
        ("missed_calls_by_hour", ["local_date", "local_hour"]),
        ("missed_calls_by_user", ["local_date", "user_id"]),
    ],
)
def test_missed_call_reports_match_the_truth(
    built: Built, conn: duckdb.DuckDBPyConnection, name: str, key: list[str]
) -> None:
    expected = expected_missed(truth_events(built), key)
    assert_report_matches(read_report(conn, name, FIRST, LAST), expected, key)


def test_unreturned_missed_calls_match_the_truth(
    built: Built, conn: duckdb.DuckDBPyConnection
) -> None:
    expected = expected_unreturned(truth_events(built), 24)
    actual = read_report(conn, "unreturned_missed_calls", FIRST, LAST)
    assert_report_matches(actual, expected, ["event_id"])
    listed = set(actual["event_id"])
    for key in ("a_missed", "d_missed", "g_missed"):
        assert planted_id(key) not in listed, f"{key} was called back"
    for key in ("b_missed", "c_first", "c_second", "e_missed", "f_missed", "h_missed", "i_missed"):
        assert planted_id(key) in listed, f"{key} was not called back"
    # waited_hours runs to the latest call on record, whatever the wall clock says.
    as_of = max(datetime.fromisoformat(r["startTime"]) for r in built.truth)
    assert set(actual["as_of"]) == {pd.Timestamp(as_of)}


def test_local_time_is_computed_with_the_warehouse_zone(
    built: Built, conn: duckdb.DuckDBPyConnection
) -> None:
    e_row = read_report(conn, "unreturned_missed_calls", FIRST, LAST).set_index("event_id")
    planted = e_row.loc[planted_id("e_missed")]
    assert planted["local_start_time"] == pd.Timestamp("2026-03-09 09:00:00")


def test_days_split_at_local_midnight_across_the_clock_change(
    built: Built, conn: duckdb.DuckDBPyConnection
) -> None:
    events = truth_events(built)
    zone = ZoneInfo(TZ)
    local_starts = [datetime.fromisoformat(r["startTime"]).astimezone(zone) for r in built.truth]
    # The data set really has calls exactly at local midnight (they open the new day).
    at_midnight = [
        s for s in local_starts if (s.hour, s.minute, s.second, s.microsecond) == (0,) * 4
    ]
    assert at_midnight
    volume = read_report(conn, "daily_call_volume", FIRST, LAST)
    per_day = volume.groupby("local_date")["total_calls"].sum().to_dict()
    assert per_day == events.groupby("local_date").size().to_dict()
    assert sum(per_day.values()) == len(built.truth)
    # 2026-03-08 has 23 hours: 02:00-02:59 does not exist in New York that day.
    hours = read_report(conn, "missed_calls_by_hour", DST_DAY, DST_DAY)
    inbound = events[(events["local_date"] == DST_DAY) & (events["direction"] == "INBOUND")]
    assert set(hours["local_hour"]) == set(inbound["local_hour"])
    assert 2 not in set(hours["local_hour"])
    assert {1, 3} <= set(hours["local_hour"])
    before, after = planted_id("dst_before"), planted_id("dst_after")
    gap = events.set_index("event_id").loc[[before, after], "start_time"].diff().iloc[-1]
    assert gap == timedelta(hours=1)
    start, end = local_day_window(DST_DAY, TZ)
    in_window = [r for r in built.truth if start <= datetime.fromisoformat(r["startTime"]) < end]
    assert per_day[DST_DAY] == len(in_window)
    by_hour = read_report(conn, "missed_calls_by_hour", FIRST, LAST)
    missed = read_report(conn, "missed_calls", FIRST, LAST)
    assert by_hour.groupby("local_date")["inbound_calls"].sum().tolist() == (
        missed["inbound_calls"].tolist()
    )


# ----------------------------------------------------------------------------------------------
# Materialising: partition replace, one transaction, settings


def _all_reports(path: Path) -> dict[str, pd.DataFrame]:
    with wh.connect(path, read_only=True) as conn:
        conn.execute("SET TimeZone = 'UTC'")
        return {name: read_report(conn, name, FIRST, LAST) for name in REPORTS}


def _copy_warehouse(built: Built, tmp_path: Path) -> Path:
    return copy_warehouse(built.path, tmp_path / "copy.sqlite")


def test_rerunning_a_day_replaces_only_that_day(built: Built, tmp_path: Path) -> None:
    path = _copy_warehouse(built, tmp_path)
    before = _all_reports(path)
    with wh.connect(path) as conn:
        counts = materialize_reports(conn, DST_DAY, DST_DAY, TZ)
        again = materialize_reports(conn, DST_DAY, DST_DAY, TZ)
    assert counts == again
    after = _all_reports(path)
    for name in REPORTS:
        pd.testing.assert_frame_equal(after[name], before[name], check_like=False)
        low, high = recomputed_range(name, DST_DAY, DST_DAY, 24)
        days = before[name]["local_date"]
        assert counts[name] == int(((days >= low) & (days <= high)).sum())


def test_a_callback_synced_later_clears_the_earlier_day(built: Built, tmp_path: Path) -> None:
    """Rebuilding the day of a callback refreshes the missed call of the day before."""
    path = _copy_warehouse(built, tmp_path)
    a_missed, a_back = planted_id("a_missed"), planted_id("a_back")
    with wh.connect(path) as conn:
        conn.execute(
            "CREATE TEMP TABLE callback AS SELECT * FROM vis.events WHERE event_id = ?", [a_back]
        )
        conn.execute("DELETE FROM vis.events WHERE event_id = ?", [a_back])
        materialize_reports(conn, FIRST, LAST, TZ)
        listed = set(read_report(conn, "unreturned_missed_calls", FIRST, LAST)["event_id"])
        assert a_missed in listed
        conn.execute("INSERT INTO vis.events SELECT * FROM callback")
        materialize_reports(conn, DST_DAY, DST_DAY, TZ)
        listed = set(read_report(conn, "unreturned_missed_calls", FIRST, LAST)["event_id"])
    assert a_missed not in listed


def test_a_longer_callback_window_returns_more_calls(built: Built, tmp_path: Path) -> None:
    path = _copy_warehouse(built, tmp_path)
    with wh.connect(path) as conn:
        materialize_reports(conn, FIRST, LAST, TZ, callback_hours=48)
        actual = read_report(conn, "unreturned_missed_calls", FIRST, LAST)
    assert_report_matches(actual, expected_unreturned(truth_events(built), 48), ["event_id"])
    assert planted_id("b_missed") not in set(actual["event_id"])


def test_a_failing_report_changes_nothing(built: Built, tmp_path: Path) -> None:
    path = tmp_path / "fresh.sqlite"
    path.write_bytes(built.path.read_bytes())
    with wh.connect(path) as conn:
        for name in REPORTS:
            conn.execute(f"DROP TABLE reports.{name}")
        # A table of the last report with the wrong columns makes its insert fail.
        conn.execute("CREATE TABLE reports.unreturned_missed_calls (local_date DATE, x INTEGER)")
        with pytest.raises(duckdb.Error):
            materialize_reports(conn, FIRST, LAST, TZ)
        tables = {
            row[0]
            for row in conn.execute(
                "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'reports'"
            ).fetchall()
        }
    assert tables == {"unreturned_missed_calls"}


def test_the_wrong_time_zone_is_refused(built: Built, tmp_path: Path) -> None:
    path = _copy_warehouse(built, tmp_path)
    with wh.connect(path) as conn, pytest.raises(ReportError, match="another reporting time"):
        materialize_reports(conn, FIRST, LAST, "UTC")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((LAST, FIRST, TZ, 24), "before first day"),
        ((FIRST, LAST, "Mars/Olympus", 24), "unknown time zone"),
        ((FIRST, LAST, TZ, 0), "callback_hours"),
    ],
)
def test_bad_settings_are_refused(
    built: Built, tmp_path: Path, args: tuple[Any, ...], message: str
) -> None:
    path = _copy_warehouse(built, tmp_path)
    with wh.connect(path) as conn, pytest.raises(ReportError, match=message):
        materialize_reports(conn, *args)


def test_unknown_report_is_refused(conn: duckdb.DuckDBPyConnection) -> None:
    with pytest.raises(ReportError, match="unknown report 'nope'; known reports: daily_call"):
        read_report(conn, "nope", FIRST, LAST)


def test_every_report_has_its_documented_columns(conn: duckdb.DuckDBPyConnection) -> None:
    for name, spec in REPORTS.items():
        assert tuple(read_report(conn, name, FIRST, LAST).columns) == spec.columns


# ----------------------------------------------------------------------------------------------
# Dagster assets


def test_report_assets_materialise_each_day_with_previews_charts_and_exports(
    built: Built, tmp_path: Path
) -> None:
    path = _copy_warehouse(built, tmp_path)
    partitions = dg.DailyPartitionsDefinition(start_date="2026-03-01", timezone=TZ)
    # The report tables are a spec of the daily sync op; run alone, it syncs nothing.
    assets = [build_sync_asset(partitions, freshness_hour=9), build_export_asset(partitions)]
    resources = build_resources(Settings(warehouse=str(path), timezone=TZ))
    tags = {
        "dagster/asset_partition_range_start": FIRST.isoformat(),
        "dagster/asset_partition_range_end": LAST.isoformat(),
    }
    tables = dg.materialize(assets, selection=[REPORT_TABLES], resources=resources, tags=tags)
    assert tables.success
    days = {
        event.materialization.partition: event.materialization.metadata
        for event in tables.get_asset_materialization_events()
    }
    assert set(days) == {day.isoformat() for day in days_between(FIRST, LAST)}
    with wh.connect(path, read_only=True) as conn:
        for name in REPORTS:
            table = read_report(conn, name, FIRST, LAST)
            assert sum(metadata[f"{name}/rows"].value for metadata in days.values()) == len(table)
    last = days[LAST.isoformat()]
    for name in REPORTS:
        assert "|" in last[f"run/{name}/preview"].value
        assert last[f"run/{name}/chart"].value.startswith("![chart](data:image/svg+xml;base64,")
    exports = tmp_path / "exports"
    result = dg.materialize(
        assets,
        selection=[EXPORT],
        resources=resources,
        tags=tags,
        run_config={"ops": {"reports__export": {"config": {"directory": str(exports)}}}},
    )
    assert result.success
    assert EXPORT in {m.asset_key for m in result.get_asset_materialization_events()}
    names = sorted(p.name for p in exports.iterdir())
    assert f"dashboard_{FIRST}_{LAST}.html" in names
    assert {f"{name}_{FIRST}_{LAST}.csv" for name in REPORTS} <= set(names)
    with wh.connect(path, read_only=True) as conn:
        table = read_report(conn, "missed_calls", FIRST, LAST)
    written = pd.read_csv(exports / f"missed_calls_{FIRST}_{LAST}.csv")
    assert written["missed_calls"].tolist() == table["missed_calls"].tolist()
