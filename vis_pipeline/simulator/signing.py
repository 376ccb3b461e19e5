"""How a delivery is signed and where its metadata travels, per the webhook's metadataPolicy.

The simulator's own code, shared with nobody: a receiver that agreed with it only because both
imported the same helper would prove nothing. The signature is the hex HMAC-SHA256 of the exact
bytes signed, keyed with the UTF-8 bytes of the signing key.

- ``HEADER``: the body is the event as JSON; the signature and the other metadata are headers
  (``X-VON-Signature``, ``X-VON-Webhook-Id``, ``X-VON-Delivery-Id``, ``X-VON-Event-Type``,
  ``X-VON-Timestamp``).
- ``BODY``: the body is ``{"metadata": {...}, "event": {...}}``; the signature covers the
  event's bytes exactly as they stand inside the body.
- ``NONE``: the body is the event, with no metadata and no signature at all.
"""

from __future__ import annotations

import hashlib
import hmac

import orjson

SIGNATURE_HEADER = "X-VON-Signature"
"""Header carrying the signature under metadataPolicy HEADER."""

METADATA_HEADERS = {
    "webhookId": "X-VON-Webhook-Id",
    "deliveryId": "X-VON-Delivery-Id",
    "eventType": "X-VON-Event-Type",
    "timestamp": "X-VON-Timestamp",
}
"""The header of each metadata field under metadataPolicy HEADER."""

JSON_TYPE = ("content-type", "application/json")

Headers = list[tuple[str, str]]
"""Request headers, in order."""


def sign(key: str, body: bytes) -> str:
    """The hex HMAC-SHA256 of ``body`` under ``key``."""
    return hmac.new(key.encode("utf-8"), body, hashlib.sha256).hexdigest()


def forged_signature(key: str, body: bytes) -> str:
    """A well-formed signature that does not match ``body`` (a corrupted delivery)."""
    return sign(key, body + b" ")


def delivery_request(
    policy: str,
    key: str | None,
    event: bytes,
    metadata: dict[str, str],
    *,
    signature: str | None = None,
) -> tuple[bytes, Headers]:
    """The body and headers of one delivery of ``event`` (JSON bytes) under ``policy``.

    ``metadata`` holds webhookId, deliveryId, eventType and timestamp; ``signature`` replaces
    the computed one (a fault), else the event is signed with ``key`` when there is one.
    """
    if policy == "NONE":
        return event, [JSON_TYPE]
    signed = signature if signature is not None else (sign(key, event) if key else None)
    if policy == "BODY":
        meta = dict(metadata, **({"signature": signed} if signed else {}))
        return b'{"metadata":' + orjson.dumps(meta) + b',"event":' + event + b"}", [JSON_TYPE]
    headers = [JSON_TYPE] + [(METADATA_HEADERS[name], value) for name, value in metadata.items()]
    if signed:
        headers.append((SIGNATURE_HEADER, signed))
    return event, headers
