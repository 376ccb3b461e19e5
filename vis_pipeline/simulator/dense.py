"""Dense instants: many calls at one single millisecond.

A ring-all group rings every agent of a large group at the same millisecond, and imported
history can share one timestamp; either can put more events at one instant than one page holds.
Each local day gets ``dense_instants_per_day`` such instants of ``dense_instant_size`` calls. The
first is on the day's local midnight (a window edge whichever way edges are read), the others
at seeded instants within the day. Instants alternate between two kinds, the midnight one first:

- ring-all: every call INBOUND, one ANSWERED and the rest MISSED, so that no direction filter
  can cut the instant below a page;
- bulk import: mixed directions and outcomes, as an imported history gives.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from vis_pipeline.simulator.options import SimulatorOptions

SLOT_MS = 1_000
"""Dense instants within a day fall in distinct slots this long (never the day's first or
last), in the first half of their slot: they are half a slot apart at least, so ordinary calls
moved off one (2 ms past it) land on no other."""

IMPORT_INBOUND_SHARE = 0.5
"""Share of inbound calls in a bulk import."""

IMPORT_MISSED_SHARE = 0.2
"""Share of an import's inbound calls that were missed (the rest answered)."""

IMPORT_CANCELLED_SHARE = 0.25
"""Share of an import's outbound calls that were cancelled (the rest answered)."""


@dataclass(frozen=True)
class DenseCalls:
    """The calls of every dense instant: start, direction and final state, one row per call."""

    start: np.ndarray
    inbound: np.ndarray
    state: np.ndarray


def dense_instants(rng: np.random.Generator, options: SimulatorOptions) -> np.ndarray:
    """Every dense instant (epoch ms), day by day, each day's local midnight first."""
    per_day = options.dense_instants_per_day
    days = [_day_instants(rng, options, day, per_day) for day in range(options.days)]
    return np.concatenate(days) if days else np.empty(0, dtype=np.int64)


def dense_calls(rng: np.random.Generator, options: SimulatorOptions) -> DenseCalls:
    """The calls of every dense instant; ring-all and import instants alternate within a day."""
    instants = dense_instants(rng, options)
    size = options.dense_instant_size
    positions = np.arange(len(instants)) % options.dense_instants_per_day
    parts = [
        _ring_all(rng, size) if position % 2 == 0 else _bulk_import(rng, size)
        for position in positions.tolist()
    ]
    inbound = np.concatenate([part[0] for part in parts])
    state = np.concatenate([part[1] for part in parts])
    return DenseCalls(np.repeat(instants, size), inbound, state)


def _day_instants(
    rng: np.random.Generator, options: SimulatorOptions, day: int, count: int
) -> np.ndarray:
    """``count`` instants of local day ``day``: its midnight, then seeded ones in time order."""
    start, end = options.day_start_ms(day), options.day_start_ms(day + 1)
    slots = np.sort(
        rng.choice(np.arange(1, (end - start) // SLOT_MS - 1), count - 1, replace=False)
    )
    inside = start + slots * SLOT_MS + rng.integers(0, SLOT_MS // 2, count - 1)
    return np.concatenate([np.array([start], dtype=np.int64), inside])


def _ring_all(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """A ring-all group: all INBOUND, one (seeded) member ANSWERED, the others MISSED."""
    state = np.full(size, "MISSED", dtype=object)
    state[int(rng.integers(0, size))] = "ANSWERED"
    return np.ones(size, dtype=bool), state


def _bulk_import(rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Imported history: mixed directions, mostly answered."""
    inbound = np.zeros(size, dtype=bool)
    inbound[rng.permutation(size)[: round(size * IMPORT_INBOUND_SHARE)]] = True
    roll = rng.random(size)
    state = np.full(size, "ANSWERED", dtype=object)
    state[inbound & (roll < IMPORT_MISSED_SHARE)] = "MISSED"
    state[~inbound & (roll < IMPORT_CANCELLED_SHARE)] = "CANCELLED"
    return inbound, state
