"""Webhook registrations: create, list, view, renew, delete.

Each registration keeps what the delivery loop (``delivery.py``) needs: target, signing,
statistics, expiry. Signing keys never leave the store: they are not in any response, repr or
message (the delivery loop signs with them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vis_pipeline.records import format_instant_ms

DAY_MS = 86_400_000
"""One day in milliseconds."""

EXPIRY_MS = 10 * DAY_MS
"""How long a registration lives after creation or renewal."""

PURGE_AFTER_EXPIRY_MS = 30 * DAY_MS
"""How long an expired registration is kept before it is purged."""

EVENT_TYPES: frozenset[str] = frozenset({"CALL"})
"""Event types a webhook may subscribe to."""

METADATA_POLICIES: frozenset[str] = frozenset({"NONE", "HEADER", "BODY"})
"""Where delivery metadata (such as the signature) travels."""

SIGNING_ALGORITHMS: frozenset[str] = frozenset({"HMAC_SHA256"})
"""Signing algorithms a webhook may ask for."""

FIRST_WEBHOOK_ID = 184_094
"""Id of the first registration (ids are strings on the wire)."""


class WebhookError(ValueError):
    """A webhook registration request that cannot be honoured; ``field`` names the culprit."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(message)
        self.field = field_name


@dataclass
class Webhook:
    """One registration and its delivery statistics."""

    webhook_id: str
    url: str
    events: list[str]
    metadata_policy: str
    signing_algo: str
    account_id: int
    user_id: int
    created_ms: int
    renewed_ms: int
    signing_key: str | None = field(default=None, repr=False)
    status: str = "ACTIVE"
    failed: bool = False
    attempts: int = 0
    failures: int = 0
    successes: int = 0

    @property
    def expire_ms(self) -> int:
        """When the registration expires."""
        return self.renewed_ms + EXPIRY_MS

    @property
    def purge_ms(self) -> int:
        """When the registration is purged."""
        return self.expire_ms + PURGE_AFTER_EXPIRY_MS

    def deliverable(self, now_ms: int) -> bool:
        """Whether a delivery loop should send events to it at ``now_ms``."""
        return self.status == "ACTIVE" and not self.failed and now_ms < self.expire_ms

    def record_delivery(self, succeeded: bool, gave_up: bool = False) -> None:
        """Count one delivery attempt; ``gave_up`` marks the registration failed."""
        self.attempts += 1
        if succeeded:
            self.successes += 1
        else:
            self.failures += 1
            self.failed = self.failed or gave_up

    def to_wire(self) -> dict[str, Any]:
        """The Webhook record as the API spells it (without the signing key)."""
        return {
            "id": self.webhook_id,
            "url": self.url,
            "events": list(self.events),
            "metadataPolicy": self.metadata_policy,
            "signingAlgo": self.signing_algo,
            "accountId": str(self.account_id),
            "userId": str(self.user_id),
            "status": self.status,
            "createdAt": format_instant_ms(self.created_ms),
            "renewedAt": format_instant_ms(self.renewed_ms),
            "expireAt": format_instant_ms(self.expire_ms),
            "purgeAt": format_instant_ms(self.purge_ms),
            "statistics": {
                "failed": self.failed,
                "totalAttempts": self.attempts,
                "totalFailures": self.failures,
                "totalSuccesses": self.successes,
            },
        }


class WebhookStore:
    """All registrations of the simulated account, by id."""

    def __init__(self, account_id: int, user_id: int) -> None:
        self._account_id = account_id
        self._user_id = user_id
        self._next_id = FIRST_WEBHOOK_ID
        self.webhooks: dict[str, Webhook] = {}

    def create(self, body: Any, now_ms: int) -> Webhook:
        """Register a webhook from a WebhookCreate body."""
        if not isinstance(body, dict):
            raise WebhookError("body", "expected a JSON object")
        url = body.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise WebhookError("url", "required: an http(s) URL")
        events = body.get("events", ["CALL"])
        if not isinstance(events, list) or not events or not set(events) <= EVENT_TYPES:
            raise WebhookError("events", f"must be a non-empty list of {sorted(EVENT_TYPES)}")
        policy = body.get("metadataPolicy", "NONE")
        if policy not in METADATA_POLICIES:
            raise WebhookError("metadataPolicy", f"must be one of {sorted(METADATA_POLICIES)}")
        algo, key = body.get("signingAlgo"), body.get("signingKey")
        if key is not None and (not isinstance(key, str) or not key):
            raise WebhookError("signingKey", "must be a non-empty string")
        if algo is None:
            algo = "HMAC_SHA256" if key else "NONE"
        elif algo not in SIGNING_ALGORITHMS:
            raise WebhookError("signingAlgo", f"must be one of {sorted(SIGNING_ALGORITHMS)}")
        elif not key:
            raise WebhookError("signingKey", f"required with signingAlgo {algo}")
        webhook = Webhook(
            webhook_id=str(self._next_id),
            url=url,
            events=list(events),
            metadata_policy=policy,
            signing_algo=algo,
            account_id=self._account_id,
            user_id=self._user_id,
            created_ms=now_ms,
            renewed_ms=now_ms,
            signing_key=key,
        )
        self._next_id += 1
        self.webhooks[webhook.webhook_id] = webhook
        return webhook

    def get(self, webhook_id: str) -> Webhook | None:
        """The registration with ``webhook_id``, or None."""
        return self.webhooks.get(webhook_id)

    def renew(self, webhook_id: str, now_ms: int) -> Webhook | None:
        """Extend a registration from ``now_ms`` and clear its failed flag."""
        webhook = self.webhooks.get(webhook_id)
        if webhook is not None:
            webhook.renewed_ms = now_ms
            webhook.failed = False
        return webhook

    def delete(self, webhook_id: str) -> bool:
        """Remove a registration; False when there was none."""
        return self.webhooks.pop(webhook_id, None) is not None

    def deliverable(self, now_ms: int) -> list[Webhook]:
        """Registrations a delivery loop should send events to at ``now_ms``."""
        return [hook for hook in self.webhooks.values() if hook.deliverable(now_ms)]
