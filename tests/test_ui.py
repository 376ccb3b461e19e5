"""The Dagster UI as a new user meets it: ``vis-pipeline demo --serve``, then ``vis-pipeline ui``.

Both commands run as a user runs them, from a fresh folder with no settings of the project's
(only a shell that points at a real token endpoint, which the demo must override). The UI must
show what the demo did: its run, the materialised partitions of ``vis/events`` (starting at the
demo's first day, not at the default ``VIS_START_DATE``), the checks and the schedule. That is
asserted through the webserver's GraphQL (what the UI's pages ask for) and, where Chromium is
installed, in the rendered pages, whose screenshots are kept under the test's folder. A run
launched from the UI afterwards must reach the demo's simulator, which ``--serve`` keeps up.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from dagster_processes import (
    SCHEDULE,
    GraphQL,
    Service,
    chromium,
    clean_environment,
    finished_run,
    free_port,
    render_page,
    wait_for,
)
from helpers import assert_same_events, expected_events, warehouse_events

from vis_pipeline import warehouse as wh
from vis_pipeline.envfile import read_env_file
from vis_pipeline.simulator.process import SimulatorControl
from vis_pipeline.simulator.serve import urls

pytestmark = pytest.mark.slow

DAYS = 5
CALLS_PER_DAY = 200
DEMO_TIMEOUT = 180.0
STARTUP_TIMEOUT = 90.0
RUN_TIMEOUT = 120.0
EVENTS_PATH = ["vis", "events"]
RECONCILED = "reconciled_with_api_count"

ASSET_QUERY = """
query ($path: [String!]!) { assetNodeOrError(assetKey: {path: $path}) { ... on AssetNode {
  partitionStats { numMaterialized numPartitions numFailed }
  assetPartitionStatuses { ... on TimePartitionStatuses { ranges { status startKey endKey } } }
  assetChecksOrError { ... on AssetChecks { checks {
    name executionForLatestMaterialization { status } } } } } } }
"""

SET_NUX_SEEN = "mutation { setNuxSeen }"
"""What dismissing the UI's first-visit "join the community" dialog sends."""


@dataclass
class DemoUI:
    """The demo's folder, its simulator and the UI opened on it."""

    folder: Path
    settings: dict[str, str]
    graphql: GraphQL
    url: str
    first: date
    last: date
    services: list[Service]

    def simulator(self) -> SimulatorControl:
        """The demo's simulator, found from the base URL the demo wrote to ``.env``."""
        address = urlsplit(self.settings["VIS_BASE_URL"])
        _, control_url, _ = urls(str(address.hostname), int(address.port or 80))
        return SimulatorControl(control_url)


def cli(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "vis_pipeline.cli", *arguments]


@pytest.fixture(scope="module")
def demo_ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoUI]:
    folder = tmp_path_factory.mktemp("fresh-checkout")
    logs = tmp_path_factory.mktemp("logs")
    # A user's shell may hold settings of a real API; the demo's .env must win over them.
    env = clean_environment(
        VIS_TOKEN_URL="https://auth.example.invalid/oauth2/token",
        VIS_CLIENT_ID="a-real-application",
        VIS_CLIENT_SECRET="its-real-secret",
    )
    today_before = datetime.now(UTC).date()
    demo_command = cli("demo", "--days", str(DAYS), "--calls-per-day", str(CALLS_PER_DAY))
    with Service("demo", [*demo_command, "--serve"], cwd=folder, env=env, logs=logs) as demo:
        wait_for(
            lambda: "serving the simulator at" in demo.log_path.read_text(),
            timeout=DEMO_TIMEOUT,
            what="the demo to sync and keep its simulator serving",
            services=[demo],
        )
        settings = read_env_file(folder / ".env")
        first = date.fromisoformat(settings["VIS_START_DATE"])
        # The demo's days end yesterday (UTC); the clock may have passed midnight meanwhile.
        assert first in {
            day - timedelta(days=DAYS) for day in (today_before, datetime.now(UTC).date())
        }
        port = free_port()
        ui_command = cli("ui", "--port", str(port))
        with Service("ui", ui_command, cwd=folder, env=env, logs=logs) as ui:
            url = f"http://127.0.0.1:{port}"
            graphql = GraphQL(url)
            wait_for(
                graphql.location_loaded,
                timeout=STARTUP_TIMEOUT,
                what="`vis-pipeline ui` to serve the code location",
                services=[demo, ui],
            )
            last = first + timedelta(days=DAYS - 1)
            yield DemoUI(folder, settings, graphql, url, first, last, [demo, ui])
            graphql.close()


def events_asset(ui: DemoUI) -> dict:
    return ui.graphql(ASSET_QUERY, path=EVENTS_PATH)["assetNodeOrError"]


def test_the_demo_leaves_an_env_file_that_points_at_its_own_simulator(demo_ui: DemoUI) -> None:
    settings = demo_ui.settings
    assert settings["VIS_ACCESS_TOKEN"] == "demo-token"
    assert urlsplit(settings["VIS_BASE_URL"]).hostname == "127.0.0.1"
    assert Path(settings["DAGSTER_HOME"]) == (demo_ui.folder / "dagster_home").resolve()
    assert Path(settings["VIS_WAREHOUSE"]) == (demo_ui.folder / "data/warehouse.sqlite").resolve()
    assert (demo_ui.folder / ".env").read_text().startswith("# Written by `vis-pipeline demo`")


def test_the_ui_shows_the_demos_run_partitions_checks_and_schedule(demo_ui: DemoUI) -> None:
    [run] = demo_ui.graphql.runs()
    assert (run["status"], run["jobName"]) == ("SUCCESS", "sync_vis")
    assert run["tags"]["dagster/asset_partition_range_start"] == demo_ui.first.isoformat()
    assert run["tags"]["dagster/asset_partition_range_end"] == demo_ui.last.isoformat()

    events = events_asset(demo_ui)
    ranges = events["assetPartitionStatuses"]["ranges"]
    assert [(r["status"], r["startKey"], r["endKey"]) for r in ranges] == [
        ("MATERIALIZED", demo_ui.first.isoformat(), demo_ui.last.isoformat())
    ]
    # The demo's days and today: the partitions start at the demo's first day.
    assert events["partitionStats"]["numPartitions"] == DAYS + 1
    assert events["partitionStats"]["numMaterialized"] == DAYS

    checks = {
        check["name"]: (check["executionForLatestMaterialization"] or {}).get("status")
        for check in events["assetChecksOrError"]["checks"]
    }
    assert checks[RECONCILED] == "SUCCEEDED", checks
    assert set(checks.values()) == {"SUCCEEDED"}, checks

    schedule = demo_ui.graphql.schedule(SCHEDULE)
    assert (schedule["cronSchedule"], schedule["executionTimezone"]) == ("15 0 * * *", "UTC")

    simulator = demo_ui.simulator()
    start = datetime(demo_ui.first.year, demo_ui.first.month, demo_ui.first.day, tzinfo=UTC)
    end = start + timedelta(days=DAYS)
    truth = simulator.truth(int(start.timestamp() * 1000), int(end.timestamp() * 1000))
    simulator.close()
    warehouse = Path(demo_ui.settings["VIS_WAREHOUSE"])
    assert_same_events(warehouse_events(warehouse), expected_events(truth, "UTC"))


def test_a_run_launched_from_the_ui_reaches_the_served_simulator(demo_ui: DemoUI) -> None:
    simulator = demo_ui.simulator()
    simulator.reset_stats()
    # "Materialize" of the first day with `full` set: fetched again, not settled from the count.
    run_config = {"ops": {"vis__events": {"config": {"full": True}}}}
    run_id = demo_ui.graphql.launch_sync_run(demo_ui.first.isoformat(), run_config)
    run = wait_for(
        lambda: finished_run(demo_ui.graphql, run_id),
        timeout=RUN_TIMEOUT,
        what="the run launched from the UI to finish",
        services=demo_ui.services,
    )
    assert run["status"] == "SUCCESS", "\n".join(s.log_tail() for s in demo_ui.services)
    assert simulator.stats()["requests"].get("listEvents"), "the run never asked the simulator"
    simulator.close()
    with wh.connect(Path(demo_ui.settings["VIS_WAREHOUSE"]), read_only=True) as conn:
        [day] = wh.run_days(conn, run_id)
    assert (day["local_date"], day["status"]) == (demo_ui.first.isoformat(), "loaded")


def test_the_pages_show_the_run_partitions_checks_and_schedule(
    demo_ui: DemoUI, tmp_path: Path
) -> None:
    browser = chromium()
    if browser is None:
        pytest.skip("chromium is not installed: the pages are not rendered (CI installs it)")
    demo_ui.graphql(SET_NUX_SEEN)
    screenshots = tmp_path / "screenshots"
    screenshots.mkdir()
    print(f"UI screenshots: {screenshots}")
    demo_run = next(run for run in demo_ui.graphql.runs() if "dagster/partition" not in run["tags"])
    pages = {
        "runs": ("/runs", [demo_run["runId"][:8], "sync_vis"]),
        "partitions": (
            "/assets/vis/events?view=partitions",
            [demo_ui.first.isoformat(), demo_ui.last.isoformat(), "Materialized"],
        ),
        "checks": ("/assets/vis/events?view=checks", [RECONCILED, "Succeeded"]),
        "automation": ("/automation", [SCHEDULE]),
    }
    for name, (path, expected) in pages.items():
        dom = render_page(browser, demo_ui.url + path, screenshots / f"{name}.png")
        missing = [text for text in expected if text not in dom]
        assert not missing, f"{path} does not show {missing} (screenshot {screenshots}/{name}.png)"
