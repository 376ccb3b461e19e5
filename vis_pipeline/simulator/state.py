"""Everything one running simulator holds: truth, behaviour, webhooks, tokens, statistics."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from vis_pipeline.simulator.behaviour import Injector
from vis_pipeline.simulator.delivery import Deliverer
from vis_pipeline.simulator.options import SimulatorOptions
from vis_pipeline.simulator.tokens import TokenIssuer
from vis_pipeline.simulator.truth import Truth
from vis_pipeline.simulator.webhooks import WebhookStore


@dataclass
class Stats:
    """API requests by operation and status (control requests are not counted)."""

    total: int = 0
    requests: defaultdict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))

    def count(self, operation_id: str, status: int) -> None:
        """Count one answered API request."""
        self.total += 1
        self.requests[operation_id][status] += 1

    def reset(self) -> None:
        """Forget every count."""
        self.total = 0
        self.requests.clear()


@dataclass
class SimulatorState:
    """One simulator's state; handlers read and change it (one event loop, no locks)."""

    options: SimulatorOptions
    truth: Truth
    injector: Injector
    webhooks: WebhookStore
    stats: Stats
    tokens: TokenIssuer
    deliveries: Deliverer

    @classmethod
    def from_options(cls, options: SimulatorOptions) -> SimulatorState:
        """A fresh simulator for ``options`` (generates the data set)."""
        truth = Truth.from_options(options)
        owner = truth.users[0]
        injector = Injector()
        webhooks = WebhookStore(truth.account["id"], owner["id"])
        return cls(
            options=options,
            truth=truth,
            injector=injector,
            webhooks=webhooks,
            stats=Stats(),
            tokens=TokenIssuer(options),
            deliveries=Deliverer(truth, webhooks, injector),
        )

    def move_clock(self, now_ms: int) -> None:
        """Set the clock and queue the webhook deliveries of the time it moved through."""
        old_ms = self.truth.now_ms
        self.truth.set_now(now_ms)
        self.deliveries.clock_moved(old_ms, now_ms)

    @property
    def owner(self) -> dict[str, Any]:
        """The user the access token belongs to."""
        return self.truth.users[0]

    def stats_json(self) -> dict[str, Any]:
        """Statistics as served by the control endpoint."""
        return {
            "total": self.stats.total,
            "requests": {
                operation: {str(status): n for status, n in sorted(counts.items())}
                for operation, counts in sorted(self.stats.requests.items())
            },
            "faults": dict(sorted(self.injector.faults.items())),
            "tokens": self.tokens.stats.to_json(),
        }

    def reset_stats(self) -> None:
        """Forget request, fault and token counts."""
        self.stats.reset()
        self.injector.faults.clear()
        self.tokens.stats.reset()
