"""The user directory: names the API cannot give, imported from a CSV, shown in every report."""

from __future__ import annotations

import html
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from helpers import SMALL, opener

from vis_pipeline import warehouse as wh
from vis_pipeline.client import VISClient
from vis_pipeline.dashboard.page import render_dashboard
from vis_pipeline.extract import WindowExtractor
from vis_pipeline.reports import materialize_reports, read_report
from vis_pipeline.simulator.process import SimulatorProcess
from vis_pipeline.sync import days_between, sync_days
from vis_pipeline.user_directory import DirectoryError, import_directory, parse_directory

FIRST = date.fromisoformat(SMALL.start)
LAST = date(FIRST.year, FIRST.month, FIRST.day + SMALL.days - 1)


def _full_name(user: dict) -> str:
    return f"{user['firstName']} {user['lastName']}".strip()


@pytest.fixture(scope="module")
def synced(simulator: SimulatorProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A warehouse synced as production does: getUser names only the token's own user."""
    path = tmp_path_factory.mktemp("directory") / "warehouse.sqlite"
    with (
        VISClient(simulator.base_url, simulator.token) as client,
        WindowExtractor(client) as extractor,
    ):
        sync_days(extractor, opener(path), days_between(FIRST, LAST), "UTC")
        me = client.get_user()
    with wh.connect(path) as conn:
        wh.replace_users(conn, [me], datetime.now(UTC))
    yield path


def _names_by_user(path: Path) -> dict[int, str | None]:
    with wh.connect(path) as conn:
        materialize_reports(conn, FIRST, LAST, "UTC")
        frame = read_report(conn, "daily_call_volume_by_user", FIRST, LAST)
    return dict(zip(frame["user_id"], frame["user_name"], strict=True))


def test_without_a_directory_only_the_tokens_own_user_has_a_name(
    simulator: SimulatorProcess, synced: Path
) -> None:
    with wh.connect(synced) as conn:
        wh.replace_user_directory(conn, {}, datetime.now(UTC))
    named = {user_id for user_id, name in _names_by_user(synced).items() if isinstance(name, str)}
    assert len(named) <= 1


def test_an_imported_directory_names_every_user_in_reports_and_on_the_dashboard(
    simulator: SimulatorProcess, synced: Path, tmp_path: Path
) -> None:
    users = simulator.control.users()
    csv_file = tmp_path / "people.csv"
    rows = [f'{user["id"]},"{_full_name(user)}"' for user in users]
    csv_file.write_text("user_id,name\n" + "\n".join(rows) + "\n", encoding="utf-8")
    with wh.connect(synced) as conn:
        assert import_directory(conn, csv_file) == len(users)
    truth = {user["id"]: _full_name(user) for user in users}
    names = _names_by_user(synced)
    assert names and all(names[user_id] == truth[user_id] for user_id in names)
    with wh.connect(synced, read_only=True) as conn:
        page = html.unescape(render_dashboard(conn, FIRST, LAST))
    assert all(truth[user_id] in page for user_id in names)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("id,name\n1,Ann\n", "user_id"),
        ("user_id,name\nseven,Ann\n", "line 2: user_id must be a whole number"),
        ("user_id,name\n7,Ann\n8,\n", "line 3: user 8 has no name"),
        ("user_id,name\n7,Ann\n7,Bob\n", "line 3: user 7 is listed twice"),
    ],
)
def test_a_bad_directory_is_refused_naming_the_line(text: str, says: str) -> None:
    with pytest.raises(DirectoryError, match=says):
        parse_directory(text.splitlines(keepends=True), "people.csv")


def test_a_refused_file_leaves_the_directory_as_it_was(synced: Path, tmp_path: Path) -> None:
    with wh.connect(synced) as conn:
        wh.replace_user_directory(conn, {1: "Ann"}, datetime.now(UTC))
        bad = tmp_path / "bad.csv"
        bad.write_text("user_id,name\n2,Bob\nx,Eve\n", encoding="utf-8")
        with pytest.raises(DirectoryError):
            import_directory(conn, bad)
        stored = conn.execute("SELECT user_id, user_name FROM vis.user_directory").fetchall()
    assert stored == [(1, "Ann")]
