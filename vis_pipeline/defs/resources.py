"""Dagster resources: the VIS API client and the DuckLake warehouse, set from the environment."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
import duckdb
from dagster_duckdb import DuckDBResource
from pydantic import PrivateAttr

from vis_pipeline.auth import TokenProvider, token_provider
from vis_pipeline.catalog import WarehouseLocation, attach_lake
from vis_pipeline.client import ClientSettings, VISClient
from vis_pipeline.extract import ExtractOptions, WindowExtractor
from vis_pipeline.settings import SECRET_VARIABLES, Settings, variable_of
from vis_pipeline.warehouse import open_writer


class VISClientResource(dg.ConfigurableResource):
    """Where the VIS API is and how hard to pull on it. Credentials come only from EnvVars.

    No field has a default of its own: :func:`build_resources` fills every one from the
    project's settings, where each default is written once. The clients of one run share one
    token provider: the account, the users and the events assets (and the extraction process
    they hand it to) renew one token, not one each.
    """

    base_url: str
    access_token: str
    token_url: str
    token_grant: str
    client_id: str
    client_secret: str
    username: str
    password: str
    token_margin_seconds: float
    token_command: str
    token_command_ttl_seconds: float
    page_size: int
    concurrency: int
    timeout_seconds: float
    max_retries: int
    max_pages_per_window: int
    edge_margin_ms: int
    repair_budget: int
    _provider: TokenProvider | None = PrivateAttr(default=None)

    def settings(self) -> Settings:
        """The project settings this resource stands for (checked, as any Settings is)."""
        return Settings(**self.model_dump())

    def _client_settings(self, settings: Settings) -> ClientSettings:
        """The client settings of ``settings``, on the provider shared by this run's clients."""
        if self._provider is None:
            self._provider = token_provider(settings)
        return ClientSettings.from_settings(settings, self._provider)

    @contextmanager
    def get_client(self) -> Iterator[VISClient]:
        """A connected client, closed when the block ends."""
        with self._client_settings(self.settings()).client() as client:
            yield client

    @contextmanager
    def get_extractor(self) -> Iterator[WindowExtractor]:
        """A connected client and its extractor, both closed when the block ends."""
        settings = self.settings()
        with (
            self._client_settings(settings).client() as client,
            WindowExtractor(client, ExtractOptions.from_settings(settings)) as extractor,
        ):
            yield extractor


class WarehouseResource(DuckDBResource):
    """The DuckLake warehouse: dagster-duckdb's connection (an in-memory DuckDB) with the lake
    attached as ``warehouse``. ``database`` stays ``:memory:``; the lake is ``catalog`` and
    ``data_path`` (VIS_WAREHOUSE and VIS_WAREHOUSE_DATA)."""

    database: str = ":memory:"
    catalog: str
    data_path: str

    def location(self) -> WarehouseLocation:
        """Where the lake is."""
        return WarehouseLocation.parse(self.catalog, self.data_path)

    @contextmanager
    def get_connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-only connection: it sees the last committed snapshot and holds no lock."""
        with super().get_connection() as conn:
            attach_lake(conn, self.location(), read_only=True)
            yield conn


@contextmanager
def write_connection(warehouse: WarehouseResource) -> Iterator[duckdb.DuckDBPyConnection]:
    """A warehouse connection for writing, schema applied, queued behind other writers where
    the catalog takes one at a time."""
    with open_writer(warehouse.location()) as conn:
        yield conn


def _secret(settings: Settings, name: str) -> str | dg.EnvVar:
    """A secret field as its EnvVar, so Dagster never stores or shows its value; empty when the
    settings leave it unset (a credential the chosen provider does not use needs no variable)."""
    variable = variable_of(name)
    assert variable in SECRET_VARIABLES, f"{variable} is not a secret variable"
    return dg.EnvVar(variable) if getattr(settings, name) else ""


def build_resources(settings: Settings) -> dict[str, dg.ConfigurableResource]:
    """The resources of the code location, every value from ``settings``; the credentials
    only as EnvVars, so Dagster never stores or shows their values."""
    return {
        "vis": VISClientResource(
            base_url=settings.base_url,
            access_token=_secret(settings, "access_token"),
            token_url=settings.token_url,
            token_grant=settings.token_grant,
            client_id=_secret(settings, "client_id"),
            client_secret=_secret(settings, "client_secret"),
            username=_secret(settings, "username"),
            password=_secret(settings, "password"),
            token_margin_seconds=settings.token_margin_seconds,
            token_command=_secret(settings, "token_command"),
            token_command_ttl_seconds=settings.token_command_ttl_seconds,
            page_size=settings.page_size,
            concurrency=settings.concurrency,
            timeout_seconds=settings.timeout_seconds,
            max_retries=settings.max_retries,
            max_pages_per_window=settings.max_pages_per_window,
            edge_margin_ms=settings.edge_margin_ms,
            repair_budget=settings.repair_budget,
        ),
        "warehouse": WarehouseResource(
            catalog=settings.warehouse, data_path=settings.warehouse_data
        ),
    }
