"""Asset checks of vis/events: the API's count per day, and the checks of the whole table.

They are evaluated inside the daily sync op (``daily_sync.py``), not as checks of their own: that
op materialises each day's partition itself and yields no output, and Dagster skips any step
downstream of an output that was not yielded, a separate check included (docs/dagster.md).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import date

import dagster as dg
import duckdb

# Not exported at Dagster's top level: it links a check result to the materialisation it
# checked, which makes the UI show the check as current for that partition.
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationTargetMaterializationData as TargetMaterialization,
)

from vis_pipeline import warehouse as wh
from vis_pipeline.defs.assets import EVENTS
from vis_pipeline.warehouse import Reconciliation

RECONCILED = "reconciled_with_api_count"
"""The check that the warehouse holds exactly the API's count of a day (one result per day)."""

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


def reconciled_spec(partitions: dg.PartitionsDefinition) -> dg.AssetCheckSpec:
    """The per-day count check: partitioned like the events, so each day has its own history."""
    # A partitioned check spec is a preview feature of Dagster 1.13; it is the only way a check's
    # results are stored per partition, which is the point of this check.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.PreviewWarning)
        return dg.AssetCheckSpec(
            RECONCILED,
            asset=EVENTS,
            partitions_def=partitions,
            description="The warehouse holds exactly as many events of the day as the API "
            "counted at the day's latest successful sync.",
        )


def table_check_specs() -> list[dg.AssetCheckSpec]:
    """One check per table check: each looks at the whole table, so it is not partitioned."""
    return [
        dg.AssetCheckSpec(name, asset=EVENTS, description=description)
        for name, description in TABLE_CHECKS.items()
    ]


def reconciliation_verdict(
    reconciliation: Reconciliation, sync_error: str | None
) -> tuple[bool, str]:
    """Whether a day passes the count check, and why, in one sentence."""
    if sync_error is not None:
        return False, f"this day's sync failed, so its count is unconfirmed: {sync_error}"
    if reconciliation.api_count is None:
        return False, "this day has never been synced"
    held = f"the warehouse holds {reconciliation.loaded} of the {reconciliation.api_count} "
    return reconciliation.ok, held + "events the API counted"


def reconciliation_evaluations(
    reconciliations: Sequence[Reconciliation],
    sync_errors: Mapping[date, str],
    targets: Mapping[str, TargetMaterialization],
) -> Iterator[dg.AssetCheckEvaluation]:
    """One count-check result per day, stored under that day's partition.

    ``AssetCheckResult`` has no partition: in a run of many days it is stored unpartitioned.
    An ``AssetCheckEvaluation`` names its partition, and its target links it to the day's
    materialisation.
    """
    for item in reconciliations:
        day = item.local_date.isoformat()
        passed, why = reconciliation_verdict(item, sync_errors.get(item.local_date))
        yield dg.AssetCheckEvaluation(
            asset_key=EVENTS,
            check_name=RECONCILED,
            passed=passed,
            partition=day,
            description=why,
            metadata={"api_count": item.api_count, "held": item.loaded},
            target_materialization_data=targets.get(day),
        )


def latest_materializations(
    instance: dg.DagsterInstance, asset_key: dg.AssetKey, partitions: Iterable[str]
) -> dict[str, TargetMaterialization]:
    """The latest materialisation of each of ``partitions`` that has one (two queries)."""
    storage_ids = instance.event_log_storage.get_latest_storage_id_by_partition(
        asset_key, dg.DagsterEventType.ASSET_MATERIALIZATION, set(partitions)
    )
    if not storage_ids:
        return {}
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=asset_key, storage_ids=list(storage_ids.values())),
        limit=len(storage_ids),
    ).records
    return {
        str(record.partition_key): TargetMaterialization(
            storage_id=record.storage_id, run_id=record.run_id, timestamp=record.timestamp
        )
        for record in records
    }


def table_check_results(
    conn: duckdb.DuckDBPyConnection, names: Iterable[str]
) -> Iterator[dg.AssetCheckResult]:
    """The result of each table check of ``names``, in ``TABLE_CHECKS`` order."""
    wanted = set(names)
    for name in (name for name in TABLE_CHECKS if name in wanted):
        result = wh.run_check(conn, name)
        yield dg.AssetCheckResult(
            asset_key=EVENTS,
            check_name=name,
            passed=result.passed,
            metadata={"failures": result.failures, "sample": dg.MetadataValue.json(result.sample)},
        )
