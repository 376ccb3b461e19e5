"""Analysts' ways into the warehouse: ``vis-pipeline sql``, ``vis-pipeline warehouse where``
and ``vis_pipeline.open_warehouse()``, all read-only, checked against the simulator's truth."""

from __future__ import annotations

import csv
import io
import os
import re
import shlex
import shutil
import subprocess
from collections import Counter
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

import duckdb
import pytest
from helpers import Built, build_warehouse, expected_events, instant

import vis_pipeline
from vis_pipeline import warehouse as wh
from vis_pipeline.ad_hoc import WIDEST_CELL, format_table, run_query
from vis_pipeline.catalog import WarehouseLocation, extension_file, load_extensions
from vis_pipeline.cli import main
from vis_pipeline.simulator.process import SimulatorProcess

FIRST, LAST = date(2026, 3, 2), date(2026, 3, 4)
TZ = "UTC"


@pytest.fixture(scope="module")
def built(simulator: SimulatorProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    """Three synced days, built once for the module (every test only reads them)."""
    path = tmp_path_factory.mktemp("adhoc") / "data" / "warehouse.sqlite"
    yield build_warehouse(simulator, path, FIRST, LAST, TZ, plant=False)


@pytest.fixture
def env(built: Built, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Built:
    """The command pointed at the built warehouse, from a folder of the test's own."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("VIS_WAREHOUSE_DATA", raising=False)
    monkeypatch.setenv("VIS_WAREHOUSE", str(built.path))
    return built


def event_ids(built: Built) -> list[int]:
    return sorted(expected_events(built.truth, TZ)["event_id"])


def test_sql_prints_an_aligned_table_and_counts_the_rows_not_shown(
    env: Built, capsys: pytest.CaptureFixture[str]
) -> None:
    query = "select event_id, direction, is_finished from vis.calls order by event_id"
    assert main(["sql", query, "--limit", "5"]) == 0
    lines = capsys.readouterr().out.splitlines()
    ids = event_ids(env)
    assert lines[0].split() == ["event_id", "direction", "is_finished"]
    assert set(lines[1]) <= {"-", " "}
    assert [int(line.split()[0]) for line in lines[2:7]] == ids[:5]
    # Numbers right-aligned under their name: every line of the column ends at one place.
    width = len(lines[1].split()[0])
    assert all(line[width - 1] != " " and line[width : width + 2] == "  " for line in lines[:7])
    assert (
        lines[7]
        == f"(5 of {len(ids):,} rows shown, {len(ids) - 5:,} more: raise --limit, or --csv FILE)"
    )

    assert main(["sql", "select count(*) as calls from vis.calls"]) == 0
    assert capsys.readouterr().out.split() == ["calls", "-----", str(len(ids)), "(1", "row)"]


def test_sql_writes_every_row_as_csv_to_a_file_or_stdout(
    env: Built, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    query = "select event_id, local_date, state, answer_time from vis.events"
    target = tmp_path / "events.csv"
    assert main(["sql", query, "--csv", str(target), "--limit", "3"]) == 0
    assert f"{len(event_ids(env)):,} rows written" in capsys.readouterr().out
    rows = list(csv.DictReader(target.open(encoding="utf-8")))
    assert sorted(int(row["event_id"]) for row in rows) == event_ids(env)
    records = {record["id"]: record for record in env.truth}
    for row in rows:
        record = records[int(row["event_id"])]
        assert row["state"] == record["state"]
        assert date.fromisoformat(row["local_date"]) == instant(record["startTime"]).date()
        answered = instant(record.get("answerTime"))
        written = row["answer_time"]
        assert (datetime.fromisoformat(written) if written else None) == answered

    assert (
        main(["sql", "select local_date, count(*) n from vis.events group by 1", "--csv", "-"]) == 0
    )
    out = capsys.readouterr().out
    days = {row["local_date"]: int(row["n"]) for row in csv.DictReader(io.StringIO(out))}
    assert days == dict(Counter(instant(r["startTime"]).date().isoformat() for r in env.truth))


@pytest.mark.parametrize(
    "statement",
    [
        "insert into vis.events select * from vis.events",
        "delete from vis.events",
        "create table vis.scratch as select 1 as a",
        "drop table vis.events",
        "update vis.sync_windows set status = 'failed'",
    ],
)
def test_sql_cannot_write_and_says_so_in_one_line(
    env: Built, statement: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with wh.connect(env.path, read_only=True) as conn:
        before = wh.status_summary(conn)["counts"]
    assert main(["sql", statement]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "read-only" in err and err.startswith("vis-pipeline: ")
    with wh.connect(env.path, read_only=True) as conn:
        assert wh.status_summary(conn)["counts"] == before


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (["sql", "select * from vis.nothing_here"], 1, "Catalog Error"),
        (["sql", "selec 1"], 1, "Parser Error"),
        (["sql", "select 1; select 2"], 2, "one statement at a time"),
        (["sql", "  "], 2, "no SQL statement"),
        (["sql", "select 1", "--limit", "-3"], 2, "not a number of rows"),
    ],
)
def test_sql_errors_are_one_line(
    env: Built, args: list[str], code: int, says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert exit_code(args) == code
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and says in err, err


def exit_code(args: list[str]) -> int | str | None:
    """What the command exits with, whether it returns the code or argparse exits."""
    try:
        return main(args)
    except SystemExit as exc:
        return exc.code


def test_sql_and_where_without_a_warehouse_say_so_in_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VIS_WAREHOUSE", str(tmp_path / "none" / "warehouse.sqlite"))
    for args in (["sql", "select 1"], ["warehouse", "where"]):
        assert main(args) == 1
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "no warehouse at" in err
    assert not (tmp_path / "none").exists()


def test_a_long_value_is_cut_in_the_table_and_whole_in_csv(env: Built) -> None:
    with wh.connect(env.path, read_only=True) as conn:
        result = run_query(conn, "select payload from raw.events limit 1")
        (payload,) = result.rows[0]
    assert len(payload) > WIDEST_CELL
    shown = format_table(result).splitlines()[2]
    assert len(shown) == WIDEST_CELL and shown.endswith("…")


def test_open_warehouse_reads_the_settings_and_env_file_and_cannot_write(
    built: Built, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VIS_WAREHOUSE", str(tmp_path / "elsewhere.sqlite"))
    (tmp_path / ".env").write_text(f"VIS_WAREHOUSE={built.path}\n", encoding="utf-8")
    with vis_pipeline.open_warehouse() as conn:
        (count,) = conn.sql("select count(*) from vis.calls").fetchone()
        with pytest.raises(duckdb.Error, match="read-only"):
            conn.execute("delete from vis.events")
    assert count == len(event_ids(built))
    frame = vis_pipeline.open_warehouse().sql("select * from vis.calls").df()
    assert sorted(frame["event_id"]) == event_ids(built)


def test_where_prints_lines_that_open_the_warehouse(
    env: Built, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["warehouse", "where"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if not line.startswith("#")]
    shell, python, pandas = lines
    assert python.startswith("import vis_pipeline; conn = vis_pipeline.open_warehouse(")
    found: dict[str, object] = {}
    exec(python, found)  # the line as a user would paste it
    with found["conn"] as conn:  # type: ignore[attr-defined]
        assert conn.sql("select count(*) from vis.calls").fetchone() == (len(event_ids(env)),)
    exec(pandas, found)
    assert sorted(found["df"]["event_id"]) == event_ids(env)  # type: ignore[index]

    # The shell line's statements, run by DuckDB with the packaged extensions loaded.
    statements = shlex.split(shell)[2]
    assert statements.startswith("ATTACH ") and "READ_ONLY" in statements
    with duckdb.connect() as conn:
        load_extensions(conn, "sqlite")
        conn.execute(statements)
        assert conn.sql("select count(*) from vis.calls").fetchone() == (len(event_ids(env)),)


def test_the_shell_line_works_in_the_duckdb_shell(env: Built) -> None:
    """The duckdb command of the pinned version, when one is installed (pip install
    duckdb-cli==<version>), given the extensions from their packages (no download)."""
    shell = shutil.which("duckdb")
    if shell is None:
        pytest.skip("no duckdb shell on PATH (pip install duckdb-cli)")
    version = subprocess.run([shell, "--version"], capture_output=True, text=True).stdout
    if not version.startswith(f"v{duckdb.__version__} "):
        pytest.skip(f"the duckdb shell is {version.strip()}, not {duckdb.__version__}")
    line = WarehouseLocation.parse(env.path).shell_line()
    loads = "; ".join(f"LOAD '{extension_file(name)}'" for name in ("ducklake", "sqlite_scanner"))
    command = [shell, "-cmd", loads, *shlex.split(line)[1:], "-csv", "-c"]
    command.append("select count(*) as n from vis.calls")
    ran = subprocess.run(command, capture_output=True, text=True, timeout=60, env=os.environ)
    assert ran.returncode == 0, ran.stderr
    assert re.fullmatch(rf"n\s+{len(event_ids(env))}\s*", ran.stdout), ran.stdout


def test_help_lists_the_query_and_warehouse_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert exit_code(["--help"]) == 0
    out = capsys.readouterr().out
    assert "sql" in out and "warehouse" in out and "warehouse where" in out
    assert exit_code(["warehouse", "--help"]) == 0
    out = capsys.readouterr().out
    assert "import" in out and "where" in out
