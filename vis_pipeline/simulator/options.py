"""What a simulated data set is made of: the options every part of the simulator agrees on."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from vis_pipeline.records import InvalidInstant, parse_instant_ms

DEFAULT_TOKEN = "sim-token"
"""Access token the simulator accepts unless told otherwise."""

DEFAULT_START = "2026-01-01"
"""First local day of the data set when the options are built without one."""


class OptionsError(ValueError):
    """Simulator options that cannot describe a data set."""


@dataclass(frozen=True)
class SimulatorOptions:
    """A data set and its clock, fully determined by these values.

    ``start`` is a local date in ``tz``; the data covers [start 00:00 local, start + days
    00:00 local). ``now`` is the simulated clock's first reading (an ISO instant); by default
    the end of that range.
    """

    seed: int = 7
    start: str = DEFAULT_START
    days: int = 30
    calls_per_day: int = 1000
    users: int = 12
    tz: str = "UTC"
    token: str = field(default=DEFAULT_TOKEN, repr=False)
    now: str | None = None

    def __post_init__(self) -> None:
        if self.days < 1:
            raise OptionsError(f"days must be at least 1, got {self.days}")
        if self.calls_per_day < 0:
            raise OptionsError(f"calls_per_day must not be negative, got {self.calls_per_day}")
        if self.users < 1:
            raise OptionsError(f"users must be at least 1, got {self.users}")
        if not self.token:
            raise OptionsError("token must not be empty")
        self.zone()
        self.start_date()
        if self.now is not None:
            try:
                parse_instant_ms(self.now)
            except InvalidInstant as exc:
                raise OptionsError(f"now: {exc}") from None

    def zone(self) -> ZoneInfo:
        """The local time zone of the data set."""
        try:
            return ZoneInfo(self.tz)
        except (ZoneInfoNotFoundError, ValueError):
            raise OptionsError(f"unknown time zone {self.tz!r}") from None

    def start_date(self) -> date:
        """The first local day."""
        try:
            return date.fromisoformat(self.start)
        except ValueError:
            raise OptionsError(
                f"start must be a date like 2026-01-31, got {self.start!r}"
            ) from None

    def day_start_ms(self, day_index: int) -> int:
        """Epoch ms of local midnight starting day ``day_index`` (0 = ``start``)."""
        local = datetime.combine(self.start_date() + timedelta(days=day_index), datetime.min.time())
        return int(local.replace(tzinfo=self.zone()).timestamp()) * 1000

    def range_ms(self) -> tuple[int, int]:
        """The data set's half-open range [first local midnight, last local midnight)."""
        return self.day_start_ms(0), self.day_start_ms(self.days)

    def now_ms(self) -> int:
        """The clock's first reading in epoch ms."""
        if self.now is None:
            return self.range_ms()[1]
        return parse_instant_ms(self.now)


def default_start(days: int, today: date | None = None) -> str:
    """The start date that makes a ``days``-long data set end today (UTC)."""
    today = today or datetime.now(UTC).date()
    return (today - timedelta(days=days)).isoformat()
