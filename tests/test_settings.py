"""One settings object: every knob read once, checked up front, and the only source of defaults."""

from __future__ import annotations

from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from vis_pipeline.client import ClientSettings, VISClient
from vis_pipeline.defs import build_definitions
from vis_pipeline.extract import ExtractOptions
from vis_pipeline.retry import RetryPolicy
from vis_pipeline.settings import (
    DEFAULTS,
    SECRET_VARIABLES,
    Settings,
    SettingsError,
    variable_of,
)

KNOBS: dict[str, str] = {
    "page_size": "37",
    "concurrency": "3",
    "timeout_seconds": "4.5",
    "max_retries": "2",
    "max_pages_per_window": "9",
    "edge_margin_ms": "250",
    "repair_budget": "77",
}
"""Each extraction knob and a value unlike its default, as the environment would give it."""


def _vis_resource(settings: Settings) -> Any:
    """The code location's VIS resource with its EnvVars resolved, as a run would get it."""
    resource = build_definitions(settings).resources["vis"]
    return resource.process_config_and_initialize()


def test_each_knob_set_in_the_environment_reaches_the_client_dagster_builds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in KNOBS.items():
        assert str(getattr(DEFAULTS, name)) != value
        monkeypatch.setenv(variable_of(name), value)
    monkeypatch.setenv("VIS_ACCESS_TOKEN", "a-token")
    with _vis_resource(Settings.from_env()).get_extractor() as extractor:
        options, client = extractor.options, extractor.client.settings
    assert client is not None
    assert options.page_size == 37
    assert options.concurrency == client.concurrency == 3
    assert client.timeout == 4.5
    assert client.retry.max_attempts == 2 + 1
    assert options.max_pages_per_window == 9
    assert options.edge_margin_ms == 250
    assert options.repair_budget == 77


def _fingerprint(definitions: dg.Definitions) -> str:
    """What a location is made of: its resources' configuration, partitions and schedules."""
    resources = {key: repr(value) for key, value in sorted((definitions.resources or {}).items())}
    schedules = [
        (s.name, s.cron_schedule, s.execution_timezone) for s in definitions.schedules or []
    ]
    events = definitions.resolve_assets_def(dg.AssetKey(["vis", "events"]))
    return repr((resources, schedules, repr(events.partitions_def)))


def test_the_location_is_a_function_of_its_settings_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(timezone="Europe/Berlin", start_date="2026-02-01", page_size=55)
    for name in [*KNOBS, "base_url", "warehouse", "timezone", "start_date", "access_token"]:
        monkeypatch.delenv(variable_of(name), raising=False)
    quiet = _fingerprint(build_definitions(settings))
    for name, value in KNOBS.items():
        monkeypatch.setenv(variable_of(name), value)
    monkeypatch.setenv("VIS_BASE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("VIS_WAREHOUSE", "elsewhere.sqlite")
    monkeypatch.setenv("VIS_TIMEZONE", "Asia/Tokyo")
    monkeypatch.setenv("VIS_START_DATE", "2025-01-01")
    assert _fingerprint(build_definitions(settings)) == quiet
    assert "Europe/Berlin" in quiet and "page_size=55" in quiet


def test_the_client_and_the_extraction_take_their_defaults_from_the_settings() -> None:
    assert ExtractOptions() == ExtractOptions.from_settings(DEFAULTS)
    assert RetryPolicy().max_attempts == DEFAULTS.max_retries + 1
    with VISClient("http://127.0.0.1:9", "a-token") as client:
        built = client.settings
    assert built is not None
    made = ClientSettings.from_settings(
        Settings(base_url="http://127.0.0.1:9", access_token="a-token")
    )
    assert (built.concurrency, built.timeout, built.retry.max_attempts) == (
        made.concurrency,
        made.timeout,
        made.retry.max_attempts,
    )


def test_no_resource_field_has_a_default_of_its_own() -> None:
    resource = build_definitions(DEFAULTS).resources["vis"]
    assert all(field.is_required() for field in type(resource).model_fields.values())


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("VIS_PAGE_SIZE", "0", "at least 1"),
        ("VIS_PAGE_SIZE", "-5", "at least 1"),
        ("VIS_PAGE_SIZE", "many", "whole number"),
        ("VIS_CONCURRENCY", "0", "at least 1"),
        ("VIS_MAX_RETRIES", "-1", "at least 0"),
        ("VIS_TIMEOUT_SECONDS", "0", "above 0"),
        ("VIS_TIMEOUT_SECONDS", "nan", "above 0"),
        ("VIS_REPAIR_BUDGET", "0", "at least 1"),
        ("VIS_TIMEZONE", "Mars/Olympus", "time zone"),
        ("VIS_START_DATE", "yesterday", "YYYY-MM-DD"),
        ("VIS_START_DATE", "2026-02-30", "YYYY-MM-DD"),
        ("VIS_BASE_URL", "ftp://example.invalid", "http"),
    ],
)
def test_a_bad_setting_is_refused_up_front_naming_its_variable(
    variable: str, value: str, says: str
) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({variable: value})
    message = str(caught.value)
    assert message.startswith(variable) and says in message and value in message


def test_settings_never_show_a_secret() -> None:
    settings = Settings(access_token="sekrit-token-value")
    assert "sekrit" not in repr(settings)
    assert asdict(settings)["access_token"] == "sekrit-token-value"


def test_the_readme_lists_every_setting_with_its_default() -> None:
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    rows = {line.split("|")[1]: line for line in readme.splitlines() if line.startswith("| `")}
    for spec in fields(Settings):
        variable = spec.metadata["env"]
        row = next((line for cells, line in rows.items() if f"`{variable}`" in cells), None)
        assert row is not None, f"{variable} is not in the README's settings table"
        default = spec.default if variable not in SECRET_VARIABLES else ""
        if default not in ("", None):
            shown = f"{default:g}" if isinstance(default, float) else str(default)
            assert f"`{shown}" in row, f"{variable}: the README does not show {shown}"
