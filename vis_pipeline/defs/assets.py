"""Assets: the account and users (unpartitioned), and the events (one partition per local day).

Thin on purpose: each asset calls plain functions of ``vis_pipeline.sync`` and
``vis_pipeline.warehouse`` and turns what they return into Dagster metadata.
"""

from datetime import UTC, date, datetime

import dagster as dg
from dagster_duckdb import DuckDBResource

from vis_pipeline import warehouse as wh
from vis_pipeline.defs.resources import VISClientResource, write_connection
from vis_pipeline.sync import raise_for_failed, sync_days

ACCOUNT = dg.AssetKey(["vis", "account"])
"""The account the token belongs to (``vis.accounts``)."""

USERS = dg.AssetKey(["vis", "users"])
"""The users the API lists (``vis.users``)."""

EVENTS = dg.AssetKey(["vis", "events"])
"""Every call event, one partition per local day (``vis.events`` and ``raw.events``)."""

RECONCILED = "reconciled_with_api_count"
"""The check that the warehouse holds exactly the API's count for every day of the run."""

WAREHOUSE_WRITE_TAGS = {"vis/warehouse": "write"}
"""Run tag the run queue uses to keep warehouse writers one at a time."""


class EventsConfig(dg.Config):
    """Run config of the events asset."""

    full: bool = False
    """Fetch every day again, even the settled ones."""


@dg.asset(key=ACCOUNT, group_name="vis", kinds={"duckdb"}, description="getAccount -> vis.accounts")
def account(vis: VISClientResource, warehouse: DuckDBResource) -> dg.MaterializeResult:
    with vis.get_client() as client:
        payload = client.get_account()
    with write_connection(warehouse) as conn:
        wh.replace_account(conn, payload, datetime.now(UTC))
    return dg.MaterializeResult(metadata={"account_id": payload.get("id")})


@dg.asset(key=USERS, group_name="vis", kinds={"duckdb"}, description="getUser -> vis.users")
def users(vis: VISClientResource, warehouse: DuckDBResource) -> dg.MaterializeResult:
    with vis.get_client() as client:
        payload = client.get_user()
    with write_connection(warehouse) as conn:
        count = wh.replace_users(conn, [payload], datetime.now(UTC))
    return dg.MaterializeResult(metadata={"users": count})


def build_events_asset(partitions: dg.DailyPartitionsDefinition) -> dg.AssetsDefinition:
    """The events asset for these partitions (their time zone is the reporting zone)."""
    tz = partitions.timezone or "UTC"

    @dg.asset(
        key=EVENTS,
        group_name="vis",
        kinds={"duckdb", "pandas"},
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        deps=[ACCOUNT, USERS],
        check_specs=[dg.AssetCheckSpec(RECONCILED, asset=EVENTS)],
        description="listEvents/getEventsCount per local day -> raw.events, vis.events",
    )
    def events(
        context: dg.AssetExecutionContext,
        config: EventsConfig,
        vis: VISClientResource,
        warehouse: DuckDBResource,
    ) -> dg.MaterializeResult:
        days = [date.fromisoformat(key) for key in context.partition_keys]
        with vis.get_client() as client:
            synced = sync_days(
                client,
                lambda: write_connection(warehouse),
                days,
                tz,
                full=config.full,
                run_id=context.run.run_id,
            )
        # The days that could be read are committed; a day that could not fails the run, by name.
        raise_for_failed(synced)
        with write_connection(warehouse) as conn:
            reconciliation = wh.reconcile(conn, days)
            preview = wh.preview_events(conn, days[0], days[-1])
        mismatched = [r for r in reconciliation if not r.ok]
        # One line per run, not per day: each log line is a write to Dagster's event log.
        context.log.info(
            f"{len(synced)} days: {sum(i.status == 'settled' for i in synced)} settled, "
            f"{sum(i.loaded for i in synced)} events loaded, "
            f"{sum(i.rejected for i in synced)} rejected"
        )
        totals = {
            name: sum(getattr(item, name) for item in synced)
            for name in ("api_count", "loaded", "rejected", "pages", "requests", "retries")
        }
        return dg.MaterializeResult(
            metadata={
                **totals,
                "seconds": round(sum(item.seconds for item in synced), 3),
                "days": len(synced),
                "settled_days": sum(item.status == "settled" for item in synced),
                "preview": dg.MetadataValue.md(preview.to_markdown(index=False)),
            },
            check_results=[
                dg.AssetCheckResult(
                    check_name=RECONCILED,
                    asset_key=EVENTS,
                    passed=not mismatched,
                    metadata={
                        "days_checked": len(reconciliation),
                        "mismatched_days": ", ".join(str(r.local_date) for r in mismatched),
                    },
                )
            ],
        )

    return events
