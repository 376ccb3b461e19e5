"""Assets: the account and users (unpartitioned), and the events (one partition per local day).

Thin on purpose: each asset calls plain functions of ``vis_pipeline.sync`` and
``vis_pipeline.warehouse`` and turns what they return into Dagster metadata. The events are
materialised by the daily sync op (``daily_sync.py``), one partition at a time; this module
says what each day's materialisation carries.
"""

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime

import dagster as dg
import duckdb

from vis_pipeline import warehouse as wh
from vis_pipeline.defs.day_figures import events_figures, live_calls_by_day
from vis_pipeline.defs.resources import VISClientResource, WarehouseResource, write_connection
from vis_pipeline.sync import DaySync

ACCOUNT = dg.AssetKey(["vis", "account"])
"""The account the token belongs to (``vis.accounts``)."""

USERS = dg.AssetKey(["vis", "users"])
"""The users the API lists (``vis.users``)."""

EVENTS = dg.AssetKey(["vis", "events"])
"""Every call event, one partition per local day (``vis.events`` and ``raw.events``)."""

WAREHOUSE_WRITE_TAGS = {"vis/warehouse": "write"}
"""Run tag the run queue uses to keep warehouse writers one at a time."""

RUN_PREFIX = "run/"
"""Metadata keys about the run's whole range, not one day: only the run's last day carries
them, so a run stores its previews and charts once rather than once per day."""


@dg.asset(key=ACCOUNT, group_name="vis", kinds={"duckdb"}, description="getAccount -> vis.accounts")
def account(vis: VISClientResource, warehouse: WarehouseResource) -> dg.MaterializeResult:
    with vis.get_client() as client:
        payload = client.get_account()
    with write_connection(warehouse) as conn:
        wh.replace_account(conn, payload, datetime.now(UTC))
    return dg.MaterializeResult(metadata={"account_id": payload.get("id")})


@dg.asset(key=USERS, group_name="vis", kinds={"duckdb"}, description="getUser -> vis.users")
def users(vis: VISClientResource, warehouse: WarehouseResource) -> dg.MaterializeResult:
    with vis.get_client() as client:
        payload = client.get_user()
    with write_connection(warehouse) as conn:
        count = wh.replace_users(conn, [payload], datetime.now(UTC))
    return dg.MaterializeResult(metadata={"users": count})


def events_spec(partitions: dg.DailyPartitionsDefinition) -> dg.AssetSpec:
    """The events, as a spec of the daily sync op: skippable, as the op yields no output for it
    but one materialisation per day (docs/dagster.md)."""
    return dg.AssetSpec(
        EVENTS,
        deps=[ACCOUNT, USERS],
        group_name="vis",
        kinds={"duckdb", "pandas"},
        partitions_def=partitions,
        skippable=True,
        description="listEvents/getEventsCount per local day -> raw.events, vis.events",
    )


def events_materializations(
    conn: duckdb.DuckDBPyConnection,
    synced: Sequence[DaySync],
    reconciliation: Sequence[wh.Reconciliation],
) -> Iterator[dg.AssetMaterialization]:
    """One materialisation per day that landed (loaded or settled), with that day's figures.

    A failed day gets none: its partition shows the run's failure instead.
    """
    landed = [item for item in synced if item.status != wh.STATUS_FAILED]
    if not landed:
        return
    first, last = synced[0].local_date, synced[-1].local_date
    held = {item.local_date: item for item in reconciliation}
    live = live_calls_by_day(conn, first, last)
    preview = wh.preview_events(conn, first, last)
    for item in landed:
        metadata = events_figures(item, held[item.local_date], live[item.local_date])
        if item is landed[-1]:
            metadata[RUN_PREFIX + "days"] = len(synced)
            metadata[RUN_PREFIX + "preview"] = dg.MetadataValue.md(preview.to_markdown(index=False))
        yield dg.AssetMaterialization(
            EVENTS, partition=item.local_date.isoformat(), metadata=metadata
        )
