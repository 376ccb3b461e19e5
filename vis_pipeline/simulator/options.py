"""What a simulated data set is made of: the options every part of the simulator agrees on."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from vis_pipeline.records import InvalidInstant, parse_instant_ms

DEFAULT_TOKEN = "sim-token"
"""Access token the simulator accepts unless told otherwise (it never expires)."""

DEFAULT_CLIENT_ID = "sim-client"
"""OAuth client id the token endpoint accepts unless told otherwise."""

DEFAULT_CLIENT_SECRET = "sim-client-secret"
"""OAuth client secret the token endpoint accepts unless told otherwise."""

DEFAULT_USERNAME = "sim-user"
"""User name the password grant accepts unless told otherwise."""

DEFAULT_PASSWORD = "sim-password"
"""Password the password grant accepts unless told otherwise."""

DEFAULT_TOKEN_TTL_SECONDS = 3600.0
"""Life of an access token from the token endpoint: an hour, as the API notes expect."""

DEFAULT_START = "2026-01-01"
"""First local day of the data set when the options are built without one."""

MAX_DENSE_INSTANTS_PER_DAY = 1000
"""Most dense instants a day may hold (they are kept well apart within the day)."""


class OptionsError(ValueError):
    """Simulator options that cannot describe a data set."""


@dataclass(frozen=True)
class SimulatorOptions:
    """A data set and its clock, fully determined by these values.

    ``start`` is a local date in ``tz``; the data covers [start 00:00 local, start + days
    00:00 local). ``now`` is the simulated clock's first reading (an ISO instant); by default
    the end of that range.

    ``dense_instants_per_day`` instants of ``dense_instant_size`` calls each, all at one
    millisecond, come on top of ``calls_per_day``; the first of each day is on its local
    midnight (see ``dense.py``).

    ``token`` is accepted for ever; the token endpoint (``tokens.py``) issues tokens that live
    ``token_ttl_seconds`` to the client ``client_id``/``client_secret`` and, with the password
    grant, to the user ``username``/``password``.
    """

    seed: int = 7
    start: str = DEFAULT_START
    days: int = 30
    calls_per_day: int = 1000
    users: int = 12
    tz: str = "UTC"
    token: str = field(default=DEFAULT_TOKEN, repr=False)
    now: str | None = None
    dense_instants_per_day: int = 0
    dense_instant_size: int = 0
    token_ttl_seconds: float = DEFAULT_TOKEN_TTL_SECONDS
    client_id: str = DEFAULT_CLIENT_ID
    client_secret: str = field(default=DEFAULT_CLIENT_SECRET, repr=False)
    username: str = DEFAULT_USERNAME
    password: str = field(default=DEFAULT_PASSWORD, repr=False)

    def __post_init__(self) -> None:
        if self.days < 1:
            raise OptionsError(f"days must be at least 1, got {self.days}")
        if self.calls_per_day < 0:
            raise OptionsError(f"calls_per_day must not be negative, got {self.calls_per_day}")
        if self.users < 1:
            raise OptionsError(f"users must be at least 1, got {self.users}")
        if not self.token:
            raise OptionsError("token must not be empty")
        if not self.token_ttl_seconds > 0:
            raise OptionsError(f"token_ttl_seconds must be above 0, got {self.token_ttl_seconds}")
        self._check_dense()
        self.zone()
        self.start_date()
        if self.now is not None:
            try:
                parse_instant_ms(self.now)
            except InvalidInstant as exc:
                raise OptionsError(f"now: {exc}") from None

    def _check_dense(self) -> None:
        """Both dense settings are given together, or neither is."""
        per_day, size = self.dense_instants_per_day, self.dense_instant_size
        if not 0 <= per_day <= MAX_DENSE_INSTANTS_PER_DAY:
            raise OptionsError(
                f"dense_instants_per_day must be from 0 to {MAX_DENSE_INSTANTS_PER_DAY}, "
                f"got {per_day}"
            )
        if size < 0:
            raise OptionsError(f"dense_instant_size must not be negative, got {size}")
        if (per_day == 0) != (size == 0):
            raise OptionsError(
                "dense_instants_per_day and dense_instant_size are set together "
                f"(got {per_day} and {size})"
            )

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
