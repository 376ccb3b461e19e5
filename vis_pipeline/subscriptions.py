"""The webhook subscription's life: subscribe, list, renew, unsubscribe, and its upkeep.

The project keeps, in its webhook folder (``VIS_WEBHOOK_HOME``), the signing key (see
``webhook_signing``) and a small record of the webhooks it subscribed (``subscriptions.json``:
id, URL, and when the upkeep last found each one healthy; never the key). Every subscription
uses metadataPolicy HEADER and HMAC_SHA256 with that one key, so the receiver needs no other.

The upkeep (the Dagster schedule ``webhook_upkeep`` calls :func:`upkeep`) keeps each recorded
webhook delivering: it renews one that would expire within the renewal margin, renews one the
API marked failed or let expire (renewing clears both), and subscribes again when the API no
longer knows it (purged or deleted). A webhook that was failed, expired or gone has missed
deliveries since the upkeep last found it healthy: that stretch is returned as a gap, for a
catch-up sync of its local days. Times are the API's (``now`` is given by the caller, the
answer's ``renewedAt``/``createdAt`` is the API's own reading of it).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from vis_pipeline.client import VISClient
from vis_pipeline.errors import VISNotFound
from vis_pipeline.records import format_instant_ms, parse_instant_ms, to_epoch_ms
from vis_pipeline.webhook_signing import key_or_new, key_path

RECORD_FILE = "subscriptions.json"
"""The record of the webhooks this project subscribed, in the webhook folder."""

METADATA_POLICY = "HEADER"
"""The one policy whose signature covers the exact bytes received (the API notes)."""

SIGNING_ALGO = "HMAC_SHA256"
"""The signing algorithm subscribed with."""


@dataclass(frozen=True)
class Subscription:
    """One webhook the project subscribed: its id, URL, and when it was last found healthy
    (an instant on the API's clock, epoch ms)."""

    webhook_id: str
    url: str
    healthy_ms: int

    def to_json(self) -> dict[str, Any]:
        """As the record stores it."""
        healthy_at = format_instant_ms(self.healthy_ms)
        return {"id": self.webhook_id, "url": self.url, "healthy_at": healthy_at}

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> Subscription:
        """From the record."""
        return cls(str(value["id"]), str(value["url"]), parse_instant_ms(value["healthy_at"]))


@dataclass(frozen=True)
class Upkept:
    """What the upkeep did to one subscription, and the deliveries it may have missed."""

    webhook_id: str
    action: str
    """``healthy`` (nothing to do), ``renewed`` (due, failed or expired) or ``resubscribed``."""
    reason: str
    """Why: ``expiring``, ``failed``, ``expired``, ``gone``, or empty when healthy."""
    gap: tuple[int, int] | None = None
    """[from, to] in epoch ms (API clock) when deliveries may have been missed."""
    expire_at: str | None = None
    """The webhook's expireAt after the upkeep."""


def record_path(webhook_home: Path) -> Path:
    """Where the record of subscriptions is kept."""
    return webhook_home / RECORD_FILE


def recorded(webhook_home: Path) -> list[Subscription]:
    """The subscriptions on record (none when there is no record)."""
    try:
        stored = orjson.loads(record_path(webhook_home).read_bytes())
    except FileNotFoundError:
        return []
    return [Subscription.from_json(item) for item in stored.get("subscriptions", [])]


def _record(webhook_home: Path, subscriptions: list[Subscription]) -> None:
    """Replace the record atomically."""
    path = record_path(webhook_home)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.new")
    body = {"subscriptions": [item.to_json() for item in subscriptions]}
    temporary.write_bytes(orjson.dumps(body, option=orjson.OPT_INDENT_2))
    os.replace(temporary, path)


def subscribe(client: VISClient, webhook_home: Path, url: str) -> dict[str, Any]:
    """Register a webhook for CALL events at ``url``, signed with the project's key (made now
    if there is none yet), and record it. Returns the API's Webhook record (no key in it)."""
    key = key_or_new(key_path(webhook_home))
    hook = client.create_webhook(
        url, signing_key=key.value, signing_algo=SIGNING_ALGO, metadata_policy=METADATA_POLICY
    )
    created = Subscription(str(hook["id"]), url, parse_instant_ms(hook["createdAt"]))
    _record(webhook_home, [*recorded(webhook_home), created])
    return hook


def unsubscribe(client: VISClient, webhook_home: Path, webhook_id: str) -> bool:
    """Delete webhook ``webhook_id`` and forget it; False when the API no longer knew it."""
    try:
        client.destroy_webhook(webhook_id)
        existed = True
    except VISNotFound:
        existed = False
    _record(webhook_home, [s for s in recorded(webhook_home) if s.webhook_id != webhook_id])
    return existed


def renew(client: VISClient, webhook_home: Path, webhook_id: str) -> dict[str, Any]:
    """Renew webhook ``webhook_id`` (expiry reset, failed flag cleared); the API's record."""
    hook = client.renew_webhook(webhook_id)
    _mark_healthy(webhook_home, webhook_id, parse_instant_ms(hook["renewedAt"]))
    return hook


def _mark_healthy(webhook_home: Path, webhook_id: str, at_ms: int) -> None:
    subscriptions = [
        Subscription(s.webhook_id, s.url, at_ms) if s.webhook_id == webhook_id else s
        for s in recorded(webhook_home)
    ]
    _record(webhook_home, subscriptions)


def upkeep(
    client: VISClient, webhook_home: Path, now: datetime, renew_within: timedelta
) -> list[Upkept]:
    """Keep every recorded subscription delivering (see the module docstring)."""
    now_ms = to_epoch_ms(now, name="now")
    margin_ms = int(renew_within.total_seconds() * 1000)
    return [
        _upkeep_one(client, webhook_home, item, now_ms, margin_ms)
        for item in recorded(webhook_home)
    ]


def _upkeep_one(
    client: VISClient, webhook_home: Path, item: Subscription, now_ms: int, margin_ms: int
) -> Upkept:
    try:
        hook = client.view_webhook(item.webhook_id)
    except VISNotFound:
        return _resubscribe(client, webhook_home, item)
    expire_ms = parse_instant_ms(hook["expireAt"])
    failed = bool(hook.get("statistics", {}).get("failed"))
    reason = (
        "failed" if failed else "expired" if expire_ms <= now_ms else
        "expiring" if expire_ms - now_ms < margin_ms else ""
    )  # fmt: skip
    if not reason:
        _mark_healthy(webhook_home, item.webhook_id, now_ms)
        return Upkept(item.webhook_id, "healthy", "", expire_at=hook["expireAt"])
    renewed = renew(client, webhook_home, item.webhook_id)
    renewed_ms = parse_instant_ms(renewed["renewedAt"])
    gap = None
    if reason != "expiring":
        # Deliveries stopped at some point after the upkeep last found it healthy (or, for an
        # expired one, at its expiry if that came first).
        gap = (min(item.healthy_ms, expire_ms), renewed_ms)
    return Upkept(item.webhook_id, "renewed", reason, gap, renewed["expireAt"])


def _resubscribe(client: VISClient, webhook_home: Path, item: Subscription) -> Upkept:
    """Subscribe ``item``'s URL again with the project's key; the old id is forgotten."""
    hook = subscribe(client, webhook_home, item.url)
    _record(webhook_home, [s for s in recorded(webhook_home) if s.webhook_id != item.webhook_id])
    gap = (item.healthy_ms, parse_instant_ms(hook["createdAt"]))
    return Upkept(str(hook["id"]), "resubscribed", "gone", gap, hook["expireAt"])
