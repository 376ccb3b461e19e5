"""Sending webhook deliveries: a queue, a few senders, retries, faults and a log.

The clock drives what is sent (``changes.py``): each move of the simulated clock queues, for
every webhook that may receive it, each call change between the old and the new reading. The
senders POST them to the webhook's URL at once, in real time, a few at a time (so deliveries
may overtake each other, as the API notes warn), through a lean HTTP/1.1 client (``sender.py``).

A delivery that is not answered 2xx within the API's limits (connect within 3 s, answer within
2 s) is tried again ``behaviour.webhook_retry_seconds`` later (10 s, as the API notes say, in
real time: on a frozen clock a retry would otherwise never come; tests shorten it), up to
``RETRIES`` times; then the webhook is marked failed and gets nothing more until it is renewed.
What is still queued for it is dropped, and so is whatever falls due while the registration
is expired (``expireAt`` on the simulated clock) or gone.

Faults (``behaviour.webhook_*``, per delivery): a duplicate is the same delivery sent twice; an
out-of-order delivery is held back ``webhook_hold_back_seconds`` so later ones overtake it; a bad
signature and an unknown webhook are extra copies the webhook never sent (a corrupted request,
another webhook's): they are sent once, never retried, and count in the fault statistics, not
in the webhook's.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from vis_pipeline.records import format_instant_ms
from vis_pipeline.simulator.changes import Change, change_at, changes_between
from vis_pipeline.simulator.sender import Sender
from vis_pipeline.simulator.signing import delivery_request, forged_signature

if TYPE_CHECKING:
    from vis_pipeline.simulator.behaviour import Injector
    from vis_pipeline.simulator.events import SimEvent
    from vis_pipeline.simulator.truth import Truth
    from vis_pipeline.simulator.webhooks import Webhook, WebhookStore

RETRIES = 5
"""Attempts after the first before a webhook is marked failed (the API notes: 5, 10 s apart)."""

SENDERS = 8
"""Deliveries in flight at once."""

CONNECT_SECONDS = 3.0
"""The receiver must accept a connection within this (the API notes)."""

ANSWER_SECONDS = 2.0
"""The receiver must answer within this (the API notes)."""

LOG_SIZE = 200_000
"""Delivery attempts kept in the log (the oldest are forgotten)."""

UNKNOWN_WEBHOOK_ID = "999999999"
"""The id an unknown-webhook fault claims to come from (ids start at 184094)."""

log = logging.getLogger(__name__)


@dataclass
class Delivery:
    """One delivery of one change to one webhook, and how it went so far."""

    delivery_id: str
    webhook_id: str
    change: Change
    kind: str = "delivery"
    """``delivery``, ``duplicate``, or a forged copy: ``bad_signature``, ``unknown_webhook``."""
    queued_at: float = field(default_factory=time.time)
    attempts: int = 0

    @property
    def forged(self) -> bool:
        """A copy the webhook never sent: sent once, outside its statistics."""
        return self.kind in ("bad_signature", "unknown_webhook")


class Deliverer:
    """The delivery queue of one simulator, its senders and its log (one event loop)."""

    def __init__(self, truth: Truth, webhooks: WebhookStore, injector: Injector) -> None:
        self._truth = truth
        self._webhooks = webhooks
        self._injector = injector
        self._queue: asyncio.Queue[Delivery] | None = None
        self._sender = Sender(CONNECT_SECONDS, ANSWER_SECONDS)
        self._senders: list[asyncio.Task[None]] = []
        self._sequence = 0
        self.in_flight = 0
        self.waiting = 0
        """Deliveries waiting for a retry or held back."""
        self.log: deque[dict[str, Any]] = deque(maxlen=LOG_SIZE)
        self.logged = 0
        """Lines ever logged (the log forgets the oldest past LOG_SIZE)."""

    # -- what is queued ------------------------------------------------------------------

    def clock_moved(self, old_ms: int, new_ms: int) -> int:
        """Queue the changes of (old_ms, new_ms] for every webhook that may get them."""
        hooks = [hook for hook in self._webhooks.webhooks.values() if _active(hook)]
        if not hooks:
            return 0
        queued = 0
        for change in changes_between(self._truth, old_ms, new_ms):
            queued += sum(self._offer(hook, change) for hook in hooks)
        return queued

    def call_changed(self, event: SimEvent) -> int:
        """Queue the change a call-control operation just made to ``event``."""
        change = change_at(event, self._truth.now_ms)
        hooks = [hook for hook in self._webhooks.webhooks.values() if _active(hook)]
        return sum(self._offer(hook, change) for hook in hooks)

    def _offer(self, hook: Webhook, change: Change) -> bool:
        """Queue ``change`` for ``hook`` if it may have it, with the faults drawn for it."""
        if not hook.deliverable(change.moment_ms) or change.moment_ms < hook.created_ms:
            return False
        self._sequence += 1
        delivery = Delivery(f"{hook.webhook_id}-{self._sequence}", hook.webhook_id, change)
        faults = self._injector.draw_webhook_faults()
        behaviour = self._injector.behaviour
        if "webhook_out_of_order" in faults:
            self._later(behaviour.webhook_hold_back_seconds, delivery)
        else:
            self._put(delivery)
        for fault, kind in (
            ("webhook_duplicate", "duplicate"),
            ("webhook_bad_signature", "bad_signature"),
            ("webhook_unknown", "unknown_webhook"),
        ):
            if fault in faults:
                self._put(Delivery(delivery.delivery_id, hook.webhook_id, change, kind))
        return True

    def _put(self, delivery: Delivery) -> None:
        self._start()
        assert self._queue is not None
        self._queue.put_nowait(delivery)

    def _later(self, seconds: float, delivery: Delivery) -> None:
        """Queue ``delivery`` after ``seconds`` of real time."""
        self.waiting += 1

        def due() -> None:
            self.waiting -= 1
            self._put(delivery)

        asyncio.get_running_loop().call_later(seconds, due)

    def _start(self) -> None:
        """Start the senders on the running loop, the first time something is queued."""
        if self._queue is not None:
            return
        self._queue = asyncio.Queue()
        loop = asyncio.get_running_loop()
        self._senders = [loop.create_task(self._send_forever()) for _ in range(SENDERS)]

    # -- sending -------------------------------------------------------------------------

    async def _send_forever(self) -> None:
        assert self._queue is not None
        while True:
            delivery = await self._queue.get()
            self.in_flight += 1
            try:
                await self._attempt(delivery)
            except Exception:
                log.exception("webhook delivery %s failed unexpectedly", delivery.delivery_id)
            finally:
                self.in_flight -= 1

    async def _attempt(self, delivery: Delivery) -> None:
        """Send ``delivery`` once; count it, log it, and retry or give up if it failed."""
        hook = self._webhooks.get(delivery.webhook_id)
        if hook is None or not hook.deliverable(self._truth.now_ms):
            self._record(delivery, None, "dropped")
            return
        status = await self._post(hook, delivery)
        if delivery.forged:
            self._record(delivery, status, "sent")
            return
        delivery.attempts += 1
        succeeded = 200 <= status < 300
        gave_up = not succeeded and delivery.attempts > RETRIES
        hook.record_delivery(succeeded, gave_up)
        if succeeded:
            self._record(delivery, status, "delivered")
        elif gave_up:
            self._record(delivery, status, "failed")
        else:
            self._record(delivery, status, "retrying")
            self._later(self._injector.behaviour.webhook_retry_seconds, delivery)

    async def _post(self, hook: Webhook, delivery: Delivery) -> int:
        """POST the delivery to the webhook's URL: the answer's status, or NO_ANSWER."""
        body, headers = self._request(hook, delivery)
        return await self._sender.post(hook.url, body, headers)

    def _request(self, hook: Webhook, delivery: Delivery) -> tuple[bytes, list[tuple[str, str]]]:
        """The delivery's body and headers under the webhook's metadataPolicy."""
        change = delivery.change
        webhook_id = hook.webhook_id
        key, signature = hook.signing_key, None
        if delivery.kind == "unknown_webhook":
            webhook_id, key = UNKNOWN_WEBHOOK_ID, secrets.token_urlsafe(32)
        elif delivery.kind == "bad_signature" and key:
            signature = forged_signature(key, change.body)
        metadata = {
            "webhookId": webhook_id,
            "deliveryId": delivery.delivery_id,
            "eventType": "CALL",
            "timestamp": format_instant_ms(change.moment_ms),
        }
        return delivery_request(
            hook.metadata_policy, key, change.body, metadata, signature=signature
        )

    def _record(self, delivery: Delivery, status: int | None, outcome: str) -> None:
        """One line of the log per attempt (or per delivery dropped unsent)."""
        change = delivery.change
        self.logged += 1
        self.log.append(
            {
                "delivery_id": delivery.delivery_id,
                "webhook_id": delivery.webhook_id,
                "kind": delivery.kind,
                "event_id": change.event.event_id,
                "state": change.state,
                "moment": format_instant_ms(change.moment_ms),
                "queued_at": delivery.queued_at,
                "at": time.time(),
                "attempt": delivery.attempts,
                "status": status,
                "outcome": outcome,
            }
        )

    # -- what the control endpoints show -------------------------------------------------

    def activity(self) -> dict[str, int]:
        """Deliveries queued, in flight and waiting (retries, held back); idle when all 0."""
        queued = self._queue.qsize() if self._queue is not None else 0
        return {"queued": queued, "in_flight": self.in_flight, "waiting": self.waiting}

    def log_since(self, index: int) -> dict[str, Any]:
        """The log lines from ``index`` on, and the index to ask from next time."""
        first_kept = self.logged - len(self.log)
        lines = list(self.log)[max(index, first_kept) - first_kept :]
        return {"next": self.logged, "deliveries": lines}


def _active(hook: Webhook) -> bool:
    """Whether ``hook`` takes deliveries at all right now (active, not failed)."""
    return hook.status == "ACTIVE" and not hook.failed
