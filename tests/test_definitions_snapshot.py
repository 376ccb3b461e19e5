"""Snapshot of the Dagster code location: every asset, check, job, schedule and sensor.

A change to what Dagster shows (a renamed asset, a dropped check, a job that selects other assets)
shows up as a diff in review instead of going unnoticed. After a deliberate change, rewrite the
snapshot with ``VIS_UPDATE_SNAPSHOTS=1 python -m pytest tests/test_definitions_snapshot.py`` and
commit it with the change.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import dagster as dg

from vis_pipeline.defs import build_definitions
from vis_pipeline.settings import Settings

SNAPSHOT = Path(__file__).parent / "snapshots" / "definitions.txt"
"""The committed listing the code location must match."""

UPDATE_VARIABLE = "VIS_UPDATE_SNAPSHOTS"
"""Set to 1 to rewrite the snapshot from the code instead of comparing with it."""

SNAPSHOT_SETTINGS = Settings(timezone="UTC", start_date="2026-01-01", resync_days=2)
"""Fixed settings, so the listing does not depend on the environment the tests run in."""

HEADER = (
    "# The Dagster code location (vis_pipeline.defs), as tests/test_definitions_snapshot.py\n"
    f"# lists it. Rewrite with {UPDATE_VARIABLE}=1 after a deliberate change.\n"
)


def definitions_listing(defs: dg.Definitions) -> str:
    """A sorted text listing of what ``defs`` shows in Dagster, one line per definition."""
    repository = defs.get_repository_def()
    check_keys = defs.resolve_asset_graph().asset_check_keys
    jobs = [job for job in defs.resolve_all_job_defs() if not job.name.startswith("__")]
    lines = [
        *sorted(_asset_line(spec) for spec in defs.resolve_all_asset_specs()),
        *sorted(_check_line(defs, key) for key in check_keys),
        *sorted(_job_line(job) for job in jobs),
        *sorted(_schedule_line(schedule) for schedule in repository.schedule_defs),
        *sorted(_sensor_line(sensor) for sensor in repository.sensor_defs),
    ]
    return HEADER + "\n".join(lines) + "\n"


def _asset_line(spec: dg.AssetSpec) -> str:
    partitions = spec.partitions_def
    kind = type(partitions).__name__ if partitions is not None else "unpartitioned"
    upstream = ", ".join(sorted(dep.asset_key.to_user_string() for dep in spec.deps))
    return f"asset {spec.key.to_user_string()}  partitions={kind}  deps=[{upstream}]"


def _check_line(defs: dg.Definitions, key: dg.AssetCheckKey) -> str:
    partitions = defs.resolve_asset_graph().get_check_spec(key).partitions_def
    kind = type(partitions).__name__ if partitions is not None else "unpartitioned"
    return f"check {key.asset_key.to_user_string()}:{key.name}  partitions={kind}"


def _sensor_line(sensor: dg.SensorDefinition) -> str:
    return f"sensor {sensor.name}  default={sensor.default_status.value}"


def _job_line(job: dg.JobDefinition) -> str:
    # The assets a job materialises are what it means; Dagster's asset layer holds them.
    assets = ", ".join(sorted(key.to_user_string() for key in job.asset_layer.selected_asset_keys))
    return f"job {job.name}  assets=[{assets}]"


def _schedule_line(schedule: dg.ScheduleDefinition) -> str:
    return (
        f"schedule {schedule.name}  cron={schedule.cron_schedule!r}  "
        f"tz={schedule.execution_timezone}  job={schedule.job_name}  "
        f"default={schedule.default_status.value}"
    )


def test_the_code_location_matches_its_snapshot() -> None:
    listing = definitions_listing(build_definitions(SNAPSHOT_SETTINGS))
    if os.environ.get(UPDATE_VARIABLE) == "1":
        SNAPSHOT.parent.mkdir(exist_ok=True)
        SNAPSHOT.write_text(listing, encoding="utf-8")
    assert SNAPSHOT.is_file(), f"no snapshot yet: run with {UPDATE_VARIABLE}=1 to write it"
    committed = SNAPSHOT.read_text(encoding="utf-8")
    diff = "".join(
        difflib.unified_diff(
            committed.splitlines(keepends=True),
            listing.splitlines(keepends=True),
            fromfile=f"{SNAPSHOT.name} (committed)",
            tofile="the code location",
        )
    )
    assert not diff, (
        f"the Dagster definitions differ from {SNAPSHOT.name}; if the change is deliberate, "
        f"rewrite it with {UPDATE_VARIABLE}=1 and commit it:\n{diff}"
    )
