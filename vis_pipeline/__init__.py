"""vis-pipeline: call history from the Vonage Integration Suite API into DuckDB, with Dagster.

``vis_pipeline.open_warehouse()`` opens the warehouse read-only for analysis::

    import vis_pipeline
    conn = vis_pipeline.open_warehouse()
    calls = conn.sql("select * from vis.calls").df()
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb

__version__ = "0.1.0"


def open_warehouse(
    warehouse: str | Path | None = None, *, data_path: str | None = None
) -> duckdb.DuckDBPyConnection:
    """The warehouse opened read-only (see :func:`vis_pipeline.ad_hoc.open_warehouse`).

    Imported when called: importing any part of the package (the simulator, the settings)
    stays free of DuckDB.
    """
    from vis_pipeline.ad_hoc import open_warehouse as opened

    return opened(warehouse, data_path=data_path)
