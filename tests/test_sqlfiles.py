"""SQL files loaded by name: inside the SQL folder only, cached, every file in use."""

from __future__ import annotations

import inspect

import pytest

from vis_pipeline import health, warehouse
from vis_pipeline.sqlfiles import SQL_DIR, UnknownSqlFile, list_sql, load_sql


def test_loads_a_file_by_name_once() -> None:
    text = load_sql("warehouse/upsert_events")
    assert text == (SQL_DIR / "warehouse" / "upsert_events.sql").read_text(encoding="utf-8")
    assert "MERGE INTO vis.events" in text
    assert load_sql("warehouse/upsert_events") is text
    assert load_sql("warehouse/upsert_events.sql") == text


@pytest.mark.parametrize(
    "name",
    [
        "../pyproject",
        "warehouse/../../pyproject",
        "/etc/passwd",
        "warehouse\\upsert_events",
        "./warehouse/upsert_events",
        "",
        "warehouse/no_such_statement",
        "warehouse",
    ],
)
def test_refuses_names_outside_the_folder_or_unknown(name: str) -> None:
    with pytest.raises(UnknownSqlFile):
        load_sql(name)


def test_schema_files_are_numbered_and_listed_in_order() -> None:
    names = list_sql("schema")
    assert names == sorted(names) and len(names) >= 7
    assert all(name.split("/")[1][:3].isdigit() for name in names)
    with pytest.raises(UnknownSqlFile):
        list_sql("nothing_here")


def test_every_warehouse_and_check_file_is_used() -> None:
    source = inspect.getsource(warehouse)
    for name in list_sql("warehouse"):
        assert f'"{name}"' in source, f"{name} is not used by the warehouse module"
    assert sorted(name.split("/")[1] for name in list_sql("checks")) == sorted(warehouse.CHECKS)


def test_statements_bind_values_instead_of_formatting_them() -> None:
    for name in list_sql("warehouse") + list_sql("checks"):
        text = load_sql(name)
        assert "{" not in text and "%s" not in text, name


def test_every_health_file_is_used() -> None:
    source = inspect.getsource(health)
    for name in list_sql("health"):
        assert f'"{name}"' in source, f"{name} is not used by the health module"
