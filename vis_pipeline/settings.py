"""One settings object for the CLI, read from the environment when asked (never at import).

Dagster reads the same variables through ``EnvVar`` in its resources; the names and defaults
live here so both agree.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

from vis_pipeline.spec import DEFAULT_BASE_URL

DEFAULT_WAREHOUSE = "data/warehouse.duckdb"
"""Warehouse file used when VIS_WAREHOUSE is not set (relative to the working directory)."""

DEFAULT_START_DATE = "2026-01-01"
"""First day of the daily partitions when VIS_START_DATE is not set."""


class SettingsError(ValueError):
    """An environment variable holds a value the project cannot use."""


@dataclass(frozen=True)
class Settings:
    """Everything the CLI needs, each field tied to one environment variable."""

    base_url: str = field(default=DEFAULT_BASE_URL, metadata={"env": "VIS_BASE_URL"})
    access_token: str = field(default="", repr=False, metadata={"env": "VIS_ACCESS_TOKEN"})
    page_size: int = field(default=100, metadata={"env": "VIS_PAGE_SIZE"})
    concurrency: int = field(default=8, metadata={"env": "VIS_CONCURRENCY"})
    timeout_seconds: float = field(default=10.0, metadata={"env": "VIS_TIMEOUT_SECONDS"})
    max_retries: int = field(default=6, metadata={"env": "VIS_MAX_RETRIES"})
    max_pages_per_window: int = field(default=50, metadata={"env": "VIS_MAX_PAGES_PER_WINDOW"})
    warehouse: str = field(default=DEFAULT_WAREHOUSE, metadata={"env": "VIS_WAREHOUSE"})
    timezone: str = field(default="UTC", metadata={"env": "VIS_TIMEZONE"})
    start_date: str = field(default=DEFAULT_START_DATE, metadata={"env": "VIS_START_DATE"})
    resync_days: int = field(default=2, metadata={"env": "VIS_RESYNC_DAYS"})
    schedule_cron: str = field(default="15 0 * * *", metadata={"env": "VIS_SCHEDULE_CRON"})
    """When the sync schedule ticks, in the reporting time zone: 00:15 local by default, late
    enough that yesterday is over, early enough for morning reports."""
    dagster_home: str = field(default="dagster_home", metadata={"env": "DAGSTER_HOME"})
    """Dagster's instance folder (run history, schedules, the run queue); a relative path is
    read from the working directory, so from the repository root it is the project's own."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Settings from ``environ`` (default: the process environment); unset means default."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for spec in fields(cls):
            raw = env.get(spec.metadata["env"])
            if raw is None or raw == "":
                continue
            kind = type(spec.default)
            try:
                values[spec.name] = kind(raw)
            except ValueError:
                raise SettingsError(
                    f"{spec.metadata['env']} must be {kind.__name__}, got {raw!r}"
                ) from None
        return cls(**values)  # type: ignore[arg-type]

    @property
    def warehouse_path(self) -> Path:
        """The warehouse file as a path."""
        return Path(self.warehouse)
