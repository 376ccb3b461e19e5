"""The webhook path in Dagster: the sensor asks for a drain only when something is spooled and
no drain is under way; the drain job lands the deliveries and shows counts, never a body."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import orjson
from helpers import assert_same_events, expected_events, make_event, warehouse_events

from vis_pipeline.defs import build_definitions
from vis_pipeline.defs.live import DRAIN_JOB, DRAIN_SENSOR
from vis_pipeline.settings import Settings
from vis_pipeline.spool import Spool, SpoolEntry, SpoolWriter, spool_folder


def test_the_sensor_asks_for_one_drain_and_the_run_lands_the_deliveries(
    tmp_path: Path, warehouse_path: Path, dagster_home: Path
) -> None:
    settings = Settings(warehouse=str(warehouse_path), webhook_home=str(tmp_path / "webhook"))
    definitions = build_definitions(settings)
    sensor = definitions.resolve_sensor_def(DRAIN_SENSOR)
    job = definitions.resolve_job_def(DRAIN_JOB)
    folder = spool_folder(settings.webhook_path)
    record = make_event(9, "2026-03-03T10:00:00.000Z", "RINGING", phoneNumber="+15550999")
    with dg.DagsterInstance.get() as instance:
        context = dg.build_sensor_context(instance=instance)
        assert sensor.evaluate_tick(context).run_requests == []
        writer = SpoolWriter(folder)
        writer.append([SpoolEntry(1, orjson.dumps(record)), SpoolEntry(2, orjson.dumps(record))])
        writer.close()
        (request,) = sensor.evaluate_tick(dg.build_sensor_context(instance=instance)).run_requests
        assert request.job_name in (None, DRAIN_JOB)
        result = job.execute_in_process(instance=instance, tags=request.tags)
        assert result.success
        assert result.output_for_node("drain_spool") == {
            "deliveries": 2, "events": 1, "inserted": 1, "stale": 0, "rejected": 0,
            "days": "2026-03-03",
        }  # fmt: skip
        logged = " ".join(
            str(event.message) for event in instance.all_logs(result.run_id) if event.message
        )
        assert "+15550999" not in logged
        assert sensor.evaluate_tick(dg.build_sensor_context(instance=instance)).run_requests == []
        # A drain not finished yet: no second one.
        writer = SpoolWriter(folder)
        writer.append([SpoolEntry(3, orjson.dumps(record))])
        writer.close()
        instance.create_run_for_job(job, status=dg.DagsterRunStatus.NOT_STARTED)
        skipped = sensor.evaluate_tick(dg.build_sensor_context(instance=instance))
        assert skipped.run_requests == [] and "queued or running" in str(skipped.skip_message)
    assert Spool(folder).pending_bytes() > 0
    assert_same_events(warehouse_events(warehouse_path), expected_events([record], "UTC"))
