"""Asset checks on the whole events table: each runs one SQL file of ``sql/checks``."""

import dagster as dg
from dagster_duckdb import DuckDBResource

from vis_pipeline import warehouse as wh
from vis_pipeline.defs.assets import EVENTS
from vis_pipeline.defs.resources import write_connection

TABLE_CHECKS = {
    "unique_event_id": "Every event_id appears once in vis.events and once in raw.events.",
    "call_fields_match_state": "Answered calls have an answer time, unanswered ones none, "
    "final ones an end and a duration.",
    "call_times_in_order": "No call is answered before it starts or after it ends, ends before "
    "it starts, or lasts a negative time.",
    "no_final_regressed": "No call seen in a final state is stored in a live state.",
    "raw_matches_events": "raw.events and vis.events hold the same events.",
}
"""Check name -> what it guarantees; the name is also the SQL file's name."""


def _build_check(name: str, description: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(asset=EVENTS, name=name, description=description)
    def _check(warehouse: DuckDBResource) -> dg.AssetCheckResult:
        with write_connection(warehouse) as conn:
            result = wh.run_check(conn, name)
        return dg.AssetCheckResult(
            passed=result.passed,
            metadata={"failures": result.failures, "sample": dg.MetadataValue.json(result.sample)},
        )

    return _check


def build_checks() -> list[dg.AssetChecksDefinition]:
    """One Dagster check per table check."""
    return [_build_check(name, description) for name, description in TABLE_CHECKS.items()]
