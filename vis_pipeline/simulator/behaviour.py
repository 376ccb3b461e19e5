"""How the simulator misbehaves: injected faults and the readings of what the spec leaves open.

Faults hit API requests only (never the control endpoints), each with ``probability``; the
kind is drawn from ``kinds`` with a generator seeded by ``seed``, so a run is reproducible.
Webhook deliveries have faults of their own (``WEBHOOK_FAULTS``), each with its own
probability per delivery, drawn from a second generator of the same seed, so turning them on
leaves the API's faults as they were.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import asdict, dataclass, fields, replace
from email.utils import parsedate_to_datetime
from typing import Any

FAULT_KINDS: tuple[str, ...] = ("429", "500", "502", "408", "slow", "truncated", "garbage")
"""Every fault the simulator can inject."""

STATUS_FAULTS: frozenset[str] = frozenset({"429", "500", "502", "408"})
"""Faults answered with an error status instead of the real response."""

EDGE_READINGS: tuple[str, ...] = ("half-open", "strict", "closed")
"""Readings of a window's edges: [from, to), (from, to), [from, to]."""

MAX_SLOW_SECONDS = 600.0
"""Longest delay a slow response may be given."""

WEBHOOK_FAULTS: tuple[str, ...] = (
    "webhook_duplicate",
    "webhook_out_of_order",
    "webhook_bad_signature",
    "webhook_unknown",
)
"""Faults of a webhook delivery: sent twice; held back so later ones overtake it; an extra copy
with a signature that does not match; an extra copy from a webhook that does not exist."""

MAX_WEBHOOK_SECONDS = 3600.0
"""Longest retry interval or hold-back a webhook delivery may be given."""


class BehaviourError(ValueError):
    """A behaviour setting that is unknown or out of range."""


@dataclass(frozen=True)
class Behaviour:
    """Fault injection and readings, all changeable while the simulator runs."""

    probability: float = 0.0
    kinds: tuple[str, ...] = FAULT_KINDS
    seed: int = 0
    retry_after: str = "1"
    slow_seconds: float = 3.0
    first_page: int = 0
    page_cap: int | None = None
    edges: str = "half-open"
    unstable_ties: bool = False
    # Some deployments sort by startTime only and refuse any other ``sort`` with a 400.
    start_time_sort_only: bool = False
    # Webhook deliveries: the probability of each fault per delivery, the real seconds between
    # attempts of a failed delivery (the API's 10 s; tests shorten it) and how long an
    # out-of-order delivery is held back.
    webhook_duplicate: float = 0.0
    webhook_out_of_order: float = 0.0
    webhook_bad_signature: float = 0.0
    webhook_unknown: float = 0.0
    webhook_retry_seconds: float = 10.0
    webhook_hold_back_seconds: float = 0.5

    def webhook_probability(self, fault: str) -> float:
        """The probability of one of ``WEBHOOK_FAULTS`` per delivery."""
        return float(getattr(self, fault))

    def merged(self, changes: dict[str, Any]) -> Behaviour:
        """This behaviour with ``changes`` applied, every value checked."""
        known = {spec.name for spec in fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise BehaviourError(f"unknown behaviour settings: {', '.join(unknown)}")
        checked = {name: _CHECKS[name](value) for name, value in changes.items()}
        return replace(self, **checked)

    def to_json(self) -> dict[str, Any]:
        """The settings as plain JSON values."""
        values = asdict(self)
        values["kinds"] = list(self.kinds)
        return values


def _probability(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise BehaviourError(f"probability must be a number from 0 to 1, got {value!r}")
    return float(value)


def _kinds(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [part for part in value.split(",") if part]
    if not isinstance(value, list | tuple) or not value:
        raise BehaviourError(f"kinds must be a non-empty list of {FAULT_KINDS}, got {value!r}")
    kinds = tuple(str(kind) for kind in value)
    unknown = [kind for kind in kinds if kind not in FAULT_KINDS]
    if unknown:
        raise BehaviourError(f"unknown fault kinds {unknown}; known: {list(FAULT_KINDS)}")
    return kinds


def _seed(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise BehaviourError(f"seed must be an integer, got {value!r}")
    return value


def _retry_after(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return str(value)
    if isinstance(value, str):
        if value.isdigit():
            return value
        try:
            parsedate_to_datetime(value)
        except (TypeError, ValueError):
            pass
        else:
            return value
    raise BehaviourError(f"retry_after must be whole seconds or an HTTP date, got {value!r}")


def _slow_seconds(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BehaviourError(f"slow_seconds must be a number, got {value!r}")
    if not 0 <= value <= MAX_SLOW_SECONDS:
        raise BehaviourError(f"slow_seconds must be from 0 to {MAX_SLOW_SECONDS}, got {value!r}")
    return float(value)


def _first_page(value: Any) -> int:
    if isinstance(value, bool) or value not in (0, 1):
        raise BehaviourError(f"first_page must be 0 or 1, got {value!r}")
    return int(value)


def _page_cap(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise BehaviourError(f"page_cap must be a positive integer or null, got {value!r}")
    return value


def _edges(value: Any) -> str:
    if value not in EDGE_READINGS:
        raise BehaviourError(f"edges must be one of {list(EDGE_READINGS)}, got {value!r}")
    return str(value)


def _unstable_ties(value: Any) -> bool:
    if not isinstance(value, bool):
        raise BehaviourError(f"unstable_ties must be true or false, got {value!r}")
    return value


def _start_time_sort_only(value: Any) -> bool:
    if not isinstance(value, bool):
        raise BehaviourError(f"start_time_sort_only must be true or false, got {value!r}")
    return value


def _webhook_seconds(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BehaviourError(f"webhook seconds must be a number, got {value!r}")
    if not 0 <= value <= MAX_WEBHOOK_SECONDS:
        raise BehaviourError(
            f"webhook seconds must be from 0 to {MAX_WEBHOOK_SECONDS:g}, got {value!r}"
        )
    return float(value)


_CHECKS = {
    "probability": _probability,
    "kinds": _kinds,
    "seed": _seed,
    "retry_after": _retry_after,
    "slow_seconds": _slow_seconds,
    "first_page": _first_page,
    "page_cap": _page_cap,
    "edges": _edges,
    "unstable_ties": _unstable_ties,
    "start_time_sort_only": _start_time_sort_only,
    **dict.fromkeys(WEBHOOK_FAULTS, _probability),
    "webhook_retry_seconds": _webhook_seconds,
    "webhook_hold_back_seconds": _webhook_seconds,
}


class Injector:
    """The behaviour in force, its seeded generator, and a count of the faults injected."""

    def __init__(self, behaviour: Behaviour | None = None) -> None:
        self.faults: Counter[str] = Counter()
        self.behaviour = Behaviour()
        self.rng = random.Random(0)
        self.webhook_rng = random.Random(0)
        self.set(behaviour or Behaviour())

    def set(self, behaviour: Behaviour) -> None:
        """Put ``behaviour`` in force; the generators restart from its seed."""
        self.behaviour = behaviour
        self.rng = random.Random(behaviour.seed)
        self.webhook_rng = random.Random(f"webhooks-{behaviour.seed}")

    def update(self, changes: dict[str, Any]) -> Behaviour:
        """Merge ``changes`` into the behaviour in force (all or nothing)."""
        self.set(self.behaviour.merged(changes))
        return self.behaviour

    def reset(self) -> None:
        """Back to the defaults: no faults, the usual readings."""
        self.set(Behaviour())

    def draw_fault(self) -> str | None:
        """The fault to inject into the next API request, if any (and count it)."""
        behaviour = self.behaviour
        if behaviour.probability <= 0 or self.rng.random() >= behaviour.probability:
            return None
        kind = self.rng.choice(behaviour.kinds)
        self.faults[kind] += 1
        return kind

    def draw_webhook_faults(self) -> set[str]:
        """The faults of the next webhook delivery (each drawn on its own, and counted)."""
        behaviour = self.behaviour
        drawn = {
            fault
            for fault in WEBHOOK_FAULTS
            if self.webhook_rng.random() < behaviour.webhook_probability(fault)
        }
        self.faults.update(drawn)
        return drawn

    def shuffle(self, items: list[Any]) -> None:
        """Shuffle ``items`` in place with the behaviour's generator."""
        self.rng.shuffle(items)
