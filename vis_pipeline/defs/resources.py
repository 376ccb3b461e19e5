"""Dagster resources: the VIS API client and the DuckDB warehouse, set from the environment."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource

from vis_pipeline.client import VISClient
from vis_pipeline.locking import warehouse_lock
from vis_pipeline.retry import RetryPolicy
from vis_pipeline.settings import Settings
from vis_pipeline.warehouse import connect


class VISClientResource(dg.ConfigurableResource):
    """Where the VIS API is and how hard to pull on it. The token comes only from an EnvVar."""

    base_url: str
    access_token: str
    page_size: int = 100
    concurrency: int = 8
    timeout_seconds: float = 10.0
    max_retries: int = 6
    max_pages_per_window: int = 50

    @contextmanager
    def get_client(self) -> Iterator[VISClient]:
        """A connected client, closed when the block ends."""
        client = VISClient(
            self.base_url,
            self.access_token,
            page_size=self.page_size,
            concurrency=self.concurrency,
            timeout=self.timeout_seconds,
            retry=RetryPolicy(max_attempts=self.max_retries + 1),
            max_pages_per_window=self.max_pages_per_window,
        )
        with client:
            yield client


@contextmanager
def write_connection(warehouse: DuckDBResource) -> Iterator[duckdb.DuckDBPyConnection]:
    """A warehouse connection held under the inter-process write lock, schema applied.

    The resource says where the file is; the file is opened by ``warehouse.connect``, which
    attaches it under a fixed catalog name so ``vis.events`` resolves whatever the file is called
    (``DuckDBResource.get_connection`` would name the catalog after the file).
    """
    with warehouse_lock(warehouse.database), connect(warehouse.database) as conn:
        yield conn


def _env_or(name: str, default: str) -> str | dg.EnvVar:
    """The variable as an EnvVar when set (Dagster then never shows its value), else the default."""
    return dg.EnvVar(name) if os.environ.get(name) else default


def build_resources(settings: Settings) -> dict[str, dg.ConfigurableResource]:
    """The resources of the code location; every value that may be secret goes through EnvVar."""
    return {
        "vis": VISClientResource(
            base_url=_env_or("VIS_BASE_URL", settings.base_url),
            access_token=_env_or("VIS_ACCESS_TOKEN", settings.access_token),
            page_size=settings.page_size,
            concurrency=settings.concurrency,
            timeout_seconds=settings.timeout_seconds,
            max_retries=settings.max_retries,
            max_pages_per_window=settings.max_pages_per_window,
        ),
        "warehouse": DuckDBResource(database=_env_or("VIS_WAREHOUSE", settings.warehouse)),
    }
