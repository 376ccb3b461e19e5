"""The benchmark's data sets: calls a day over some days, the year, and the dense day.

``--sizes`` takes comma-separated items: ``CALLS`` (calls per weekday over ``--days`` days),
``CALLSxDAYS``, ``year`` (10,000 calls a day for 365 days) and ``dense`` (one weekday of
100,000 calls plus 3 instants of 10 pages each, every call of an instant at one millisecond).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

YEAR_ALIAS = "year"
"""The size item that stands for a year of a dense account."""

YEAR_CALLS_PER_DAY = 10_000
"""Calls per weekday of the year."""

YEAR_DAYS = 365
"""Days of the year."""

DENSE_ALIAS = "dense"
"""The size item that stands for the dense day."""

DENSE_CALLS_PER_DAY = 100_000
"""Ordinary calls of the dense day."""

DENSE_INSTANTS = 3
"""Instants of the dense day that each hold more calls than a page."""

DENSE_INSTANT_PAGES = 10
"""Pages each dense instant fills."""

_ITEM = re.compile(r"^(\d+)(?:x(\d+))?$")
"""``CALLS`` or ``CALLSxDAYS``."""


@dataclass(frozen=True)
class Size:
    """One data set of the benchmark: the simulator's calls per weekday, days and dense
    instants (``dense_instant_size`` calls at one millisecond, ``dense_instants`` a day)."""

    calls_per_day: int
    days: int
    dense_instants: int = 0
    dense_instant_size: int = 0

    @property
    def dense(self) -> bool:
        """Whether the data set has dense instants (the repairs' row)."""
        return self.dense_instants > 0

    @property
    def label(self) -> str:
        """How rows and targets name the size: ``10000x30``, ``10000x365``, ``dense``."""
        return DENSE_ALIAS if self.dense else f"{self.calls_per_day}x{self.days}"

    def describe(self) -> str:
        """The size in words."""
        days = f"{self.days} day{'s' if self.days != 1 else ''}"
        text = f"{days} x {self.calls_per_day:,} calls a day"
        if self.dense:
            text += (
                f" + {self.dense_instants} instants of {self.dense_instant_size:,} calls at one"
                " millisecond, ties unstable"
            )
        return text

    def upper_events(self) -> int:
        """At most about this many events (every day a weekday): for timeouts, before the
        simulator says how many it holds."""
        return self.days * (self.calls_per_day + self.dense_instants * self.dense_instant_size)

    def first_day(self, today: date) -> date:
        """The range's first day: it ends yesterday; a one-day range is a weekday, which has
        the full number of calls (weekends are quieter)."""
        first = today - timedelta(days=self.days)
        while self.days == 1 and first.weekday() >= 5:
            first -= timedelta(days=1)
        return first


def dense_day(page_size: int) -> Size:
    """The dense day, its instants ``DENSE_INSTANT_PAGES`` pages of ``page_size`` each."""
    return Size(DENSE_CALLS_PER_DAY, 1, DENSE_INSTANTS, DENSE_INSTANT_PAGES * page_size)


def parse_sizes(text: str, days: int, page_size: int) -> list[Size]:
    """The sizes of ``--sizes``, without repeats; ``CALLS`` alone means ``days`` days.

    In run order: the usual sizes by days then calls, the dense day last. ValueError names an
    item it cannot read.
    """
    sizes: set[Size] = set()
    for item in (part.strip().lower() for part in text.split(",")):
        if item == YEAR_ALIAS:
            sizes.add(Size(YEAR_CALLS_PER_DAY, YEAR_DAYS))
        elif item == DENSE_ALIAS:
            sizes.add(dense_day(page_size))
        elif match := _ITEM.match(item):
            calls, item_days = int(match[1]), int(match[2] or days)
            if item_days < 1:
                raise ValueError(f"a size needs at least one day: {item!r}")
            sizes.add(Size(calls, item_days))
        else:
            raise ValueError(
                f"unknown size {item!r}: CALLS, CALLSxDAYS, {YEAR_ALIAS!r} or {DENSE_ALIAS!r}"
            )
    return sorted(sizes, key=lambda size: (size.dense, size.days, size.calls_per_day))
