"""The one settings object: every knob of the project, its default and its environment variable.

Each default is written once, here. The client, the extraction, the CLI and the Dagster
resources all take their values from a :class:`Settings` (``DEFAULTS`` where nothing was set);
none of them reads the environment on its own. Values are checked when the object is built, so
a bad setting is refused before any run starts, with the variable's name and what is allowed.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import date
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from vis_pipeline.spec import DEFAULT_BASE_URL

DEFAULT_WAREHOUSE = "data/warehouse.sqlite"
"""Warehouse file used when VIS_WAREHOUSE is not set (relative to the working directory)."""

DEFAULT_START_DATE = "2026-01-01"
"""First day of the daily partitions when VIS_START_DATE is not set."""

SECRET_VARIABLES = (
    "VIS_ACCESS_TOKEN",
    "VIS_CLIENT_ID",
    "VIS_CLIENT_SECRET",
    "VIS_USERNAME",
    "VIS_PASSWORD",
    "VIS_TOKEN_COMMAND",
    "VIS_ALERT_WEBHOOK_URL",  # a chat webhook's URL is its own credential
)
"""Variables whose values are secrets: passed to Dagster only as ``EnvVar``, never shown.
(The command may carry a credential in its arguments, so it is kept as secret as one.)"""

TOKEN_GRANTS = ("client_credentials", "password")
"""OAuth 2.0 grants VIS_TOKEN_GRANT may name (the password grant's refresh token is used too)."""


class SettingsError(ValueError):
    """A setting holds a value the project cannot use (the message names the variable)."""


def _at_least(minimum: float) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        return None if value >= minimum else f"must be at least {minimum:g}"

    return check


def _positive_finite(value: float) -> str | None:
    return None if math.isfinite(value) and value > 0 else "must be a number of seconds above 0"


def _time_zone(value: str) -> str | None:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        return "must be an IANA time zone such as UTC or America/New_York"
    return None


def _iso_date(value: str) -> str | None:
    try:
        date.fromisoformat(value)
    except ValueError:
        return "must be a calendar date written YYYY-MM-DD"
    return None


OLD_WAREHOUSE_SUFFIXES = (".duckdb", ".db")
"""A warehouse named like this is a DuckDB file of an earlier version, imported once by
``vis-pipeline warehouse import``."""


def _warehouse_location(value: str) -> str | None:
    if Path(value).suffix.lower() in OLD_WAREHOUSE_SUFFIXES and not value.startswith("ducklake:"):
        return (
            "names a single-file warehouse of an earlier version; the warehouse is now a "
            f"DuckLake catalog (default {DEFAULT_WAREHOUSE}): import the file once with "
            "`vis-pipeline warehouse import FILE`"
        )
    return None


def _http_url(value: str) -> str | None:
    if value.startswith(("http://", "https://")):
        return None
    return "must be an http:// or https:// URL"


def _cron(value: str) -> str | None:
    # The shape only (five fields of cron characters): Dagster checks the values themselves
    # when it builds the schedule, and this layer does not import Dagster.
    cron_fields = value.split()
    if len(cron_fields) == 5 and all(re.fullmatch(r"[\w*/,-]+", part) for part in cron_fields):
        return None
    return "must be a cron schedule of five fields such as '15 0 * * *'"


def _optional_http_url(value: str) -> str | None:
    return None if not value else _http_url(value)


def _hour_of_day(value: int) -> str | None:
    return None if 0 <= value <= 23 else "must be an hour of the day, 0 to 23"


def _token_grant(value: str) -> str | None:
    return None if value in TOKEN_GRANTS else f"must be one of {', '.join(TOKEN_GRANTS)}"


def _credentials_problem(settings: Settings) -> str | None:
    """What is wrong with the credentials set together, naming the variables (None: nothing).

    One source of tokens at most: a static token, a token URL or a command. A token URL needs
    the client id, and what its grant asks for; credentials of a grant not in use are refused
    rather than silently ignored.
    """
    sources = [name for name, value in _token_sources(settings) if value]
    if len(sources) > 1:
        return f"{' and '.join(sources)} are set together: the token comes from one of them only"
    oauth = {
        "VIS_CLIENT_ID": settings.client_id,
        "VIS_CLIENT_SECRET": settings.client_secret,
        "VIS_USERNAME": settings.username,
        "VIS_PASSWORD": settings.password,
    }
    if not settings.token_url:
        stray = [name for name, value in oauth.items() if value]
        return f"{', '.join(stray)} set without VIS_TOKEN_URL" if stray else None
    needed = ["VIS_CLIENT_ID"]
    needed += ["VIS_USERNAME", "VIS_PASSWORD"] if settings.token_grant == "password" else []
    needed += ["VIS_CLIENT_SECRET"] if settings.token_grant == "client_credentials" else []
    missing = [name for name in needed if not oauth[name]]
    if missing:
        return f"VIS_TOKEN_GRANT={settings.token_grant} needs {', '.join(missing)}"
    if settings.token_grant != "password" and (settings.username or settings.password):
        return "VIS_USERNAME and VIS_PASSWORD are for VIS_TOKEN_GRANT=password"
    return None


def _token_sources(settings: Settings) -> list[tuple[str, str]]:
    """Each variable a token can come from, with its value."""
    return [
        ("VIS_ACCESS_TOKEN", settings.access_token),
        ("VIS_TOKEN_URL", settings.token_url),
        ("VIS_TOKEN_COMMAND", settings.token_command),
    ]


def _setting(default: Any, env: str, check: Callable[[Any], str | None] | None = None) -> Any:
    """A field tied to an environment variable, with an optional check of its value."""
    return field(
        default=default, metadata={"env": env, "check": check}, repr=env not in SECRET_VARIABLES
    )


@dataclass(frozen=True)
class Settings:
    """Everything the project can be told, each field tied to one environment variable."""

    base_url: str = _setting(DEFAULT_BASE_URL, "VIS_BASE_URL", _http_url)
    access_token: str = _setting("", "VIS_ACCESS_TOKEN")
    """A bearer token used as it is, never refreshed (the simulator's, or one pasted by hand)."""
    token_url: str = _setting("", "VIS_TOKEN_URL", _optional_http_url)
    """OAuth 2.0 token endpoint: when set, the client gets its own tokens and refreshes them."""
    token_grant: str = _setting("client_credentials", "VIS_TOKEN_GRANT", _token_grant)
    """How tokens are asked for at VIS_TOKEN_URL: ``client_credentials``, or ``password`` (with
    VIS_USERNAME and VIS_PASSWORD), whose refresh token is then used to renew them."""
    client_id: str = _setting("", "VIS_CLIENT_ID")
    client_secret: str = _setting("", "VIS_CLIENT_SECRET")
    username: str = _setting("", "VIS_USERNAME")
    password: str = _setting("", "VIS_PASSWORD")
    token_margin_seconds: float = _setting(60.0, "VIS_TOKEN_MARGIN_SECONDS", _positive_finite)
    """Seconds before it expires that a token is renewed (at most a fifth of its life)."""
    token_command: str = _setting("", "VIS_TOKEN_COMMAND")
    """A command, run without a shell, that prints a token (a secret manager's client)."""
    token_command_ttl_seconds: float = _setting(
        300.0, "VIS_TOKEN_COMMAND_TTL_SECONDS", _positive_finite
    )
    """Seconds a token from VIS_TOKEN_COMMAND is used before the command is run again."""
    page_size: int = _setting(100, "VIS_PAGE_SIZE", _at_least(1))
    """Events asked for per page (the server may honour fewer)."""
    concurrency: int = _setting(8, "VIS_CONCURRENCY", _at_least(1))
    """Requests in flight at most, and connections kept open."""
    timeout_seconds: float = _setting(10.0, "VIS_TIMEOUT_SECONDS", _positive_finite)
    """Seconds allowed for each of connect, write, read and pool wait, per request."""
    max_retries: int = _setting(7, "VIS_MAX_RETRIES", _at_least(0))
    """Times one request is repeated after a retryable failure before giving up on it."""
    max_pages_per_window: int = _setting(50, "VIS_MAX_PAGES_PER_WINDOW", _at_least(1))
    """Pages one range may need before it is split in halves by time."""
    edge_margin_ms: int = _setting(1000, "VIS_EDGE_MARGIN_MS", _at_least(1))
    """Milliseconds queried beyond each window edge, so either edge reading gives the same
    events."""
    repair_budget: int = _setting(2000, "VIS_REPAIR_BUDGET", _at_least(1))
    """Requests one day's repairs may spend beyond its planned counts and pages."""
    warehouse: str = _setting(DEFAULT_WAREHOUSE, "VIS_WAREHOUSE", _warehouse_location)
    """The warehouse's DuckLake catalog: a SQLite file (one machine, any number of readers) or
    ``ducklake:postgres:<connection string>`` (many machines and writers). Keep passwords out of
    it: PostgreSQL reads PGPASSWORD or ~/.pgpass."""
    warehouse_data: str = _setting("", "VIS_WAREHOUSE_DATA")
    """Folder or object-storage URL of the warehouse's Parquet files; empty: beside a SQLite
    catalog, in ``<catalog name>-data/`` (a PostgreSQL catalog needs it set)."""
    timezone: str = _setting("UTC", "VIS_TIMEZONE", _time_zone)
    """The business's time zone: local days, partitions and reports follow it."""
    start_date: str = _setting(DEFAULT_START_DATE, "VIS_START_DATE", _iso_date)
    """First local day of the daily partitions."""
    resync_days: int = _setting(2, "VIS_RESYNC_DAYS", _at_least(0))
    """Days before yesterday the daily schedule syncs again (late updates)."""
    schedule_cron: str = _setting("15 0 * * *", "VIS_SCHEDULE_CRON", _cron)
    """When the sync schedule ticks, in the reporting time zone: 00:15 local by default, late
    enough that yesterday is over, early enough for morning reports."""
    dagster_home: str = _setting("dagster_home", "DAGSTER_HOME")
    """Dagster's instance folder (run history, schedules, the run queue); a relative path is
    read from the working directory, so from the repository root it is the project's own."""
    freshness_hour: int = _setting(9, "VIS_FRESHNESS_HOUR", _hour_of_day)
    """Local hour (0-23) by which yesterday's events should have landed; the freshness check
    fails from then on until they have."""
    alert_webhook_url: str = _setting("", "VIS_ALERT_WEBHOOK_URL", _optional_http_url)
    """Where the run-failure sensor POSTs a small JSON about each failed sync; empty: it only
    logs."""
    webhook_home: str = _setting("data/webhook", "VIS_WEBHOOK_HOME")
    """Folder of the webhook's signing key (mode 0600), its subscription record and the spool of
    received deliveries."""
    receiver_max_body_bytes: int = _setting(65536, "VIS_RECEIVER_MAX_BODY_BYTES", _at_least(1024))
    """Largest delivery body the receiver accepts (413 beyond): an event is under 2 KB."""
    webhook_renew_hours: float = _setting(72.0, "VIS_WEBHOOK_RENEW_HOURS", _positive_finite)
    """A subscription is renewed when it would expire within this many hours."""
    webhook_upkeep_cron: str = _setting("*/10 * * * *", "VIS_WEBHOOK_UPKEEP_CRON", _cron)
    """When the webhook upkeep schedule ticks (renew, re-subscribe, catch up), in the reporting
    time zone."""
    drain_interval_seconds: int = _setting(30, "VIS_DRAIN_INTERVAL_SECONDS", _at_least(5))
    """Seconds between two looks of the drain sensor at the spool."""
    snapshot_retention_days: int = _setting(7, "VIS_SNAPSHOT_RETENTION_DAYS", _at_least(1))
    """Days the warehouse keeps old snapshots (time travel) and the files only they read; a
    reader's query never outlives it, so maintenance never deletes a file under one."""
    maintenance_cron: str = _setting("30 3 * * *", "VIS_MAINTENANCE_CRON", _cron)
    """When the warehouse maintenance schedule ticks (merge small files, expire snapshots), in
    the reporting time zone: a quiet hour after the night's sync."""

    def __post_init__(self) -> None:
        for spec in fields(self):
            check = spec.metadata["check"]
            value = getattr(self, spec.name)
            problem = check(value) if check is not None else None
            if problem is not None:
                raise SettingsError(f"{spec.metadata['env']} {problem}, got {value!r}")
        problem = _credentials_problem(self)
        if problem is not None:
            raise SettingsError(problem)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Settings from ``environ`` (default: the process environment); unset means default."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for spec in fields(cls):
            raw = env.get(spec.metadata["env"])
            if raw is None or raw == "":
                continue
            values[spec.name] = _parsed(spec.metadata["env"], raw, type(spec.default))
        return cls(**values)  # type: ignore[arg-type]

    @property
    def webhook_path(self) -> Path:
        """The webhook folder (key, subscription record, spool) as a path."""
        return Path(self.webhook_home)

    @property
    def start(self) -> date:
        """The first local day of the partitions."""
        return date.fromisoformat(self.start_date)


def _parsed(variable: str, raw: str, kind: type) -> object:
    """``raw`` read as ``kind``; SettingsError naming the variable when it is not one."""
    try:
        return kind(raw.strip()) if kind is not str else raw
    except ValueError:
        wanted = {int: "a whole number", float: "a number"}.get(kind, kind.__name__)
        raise SettingsError(f"{variable} must be {wanted}, got {raw!r}") from None


def variable_of(name: str) -> str:
    """The environment variable of the field ``name``."""
    for spec in fields(Settings):
        if spec.name == name:
            return str(spec.metadata["env"])
    raise KeyError(name)


DEFAULTS = Settings()
"""The settings of a project told nothing: the one place every default is read from."""
