"""The webhook signing key and the signature of a delivery.

The key is a secret: 256 random bits, generated here, stored in a file only its owner can read
(mode 0600, in a folder only its owner can enter), read by the receiver and by whatever
subscribes again. It is never printed, logged, put in an exception or handed to Dagster; the
objects holding it do not show it in their repr.

The signature (the API notes): the HMAC-SHA256 of the raw request body under the key's UTF-8
bytes, written in hex, or in base64 by some senders; both are accepted, compared in constant
time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path

KEY_BYTES = 32
"""Random bytes in a generated key (256 bits, the HMAC-SHA256 block's worth of entropy)."""

MAX_SIGNATURE_CHARS = 128
"""Longest signature header read (hex of SHA-256 is 64 characters, base64 is 44)."""

KEY_FILE = "signing-key"
"""The key's file inside the webhook folder (VIS_WEBHOOK_HOME)."""

OWNER_ONLY = 0o600
"""Mode of the key file: read and write for its owner, nothing for anyone else."""


class SigningKeyError(RuntimeError):
    """The signing key is missing, unreadable, or readable by others (names the file only)."""


@dataclass(frozen=True)
class SigningKey:
    """A webhook signing key; its value never shows in a repr."""

    value: str = field(repr=False)

    def sign(self, body: bytes) -> str:
        """The hex HMAC-SHA256 of ``body`` (what a sender puts in ``X-VON-Signature``)."""
        return _digest(self.value, body).hex()

    def verifies(self, body: bytes, signature: str | bytes | None) -> bool:
        """Whether ``signature`` (hex or base64) is this key's HMAC-SHA256 of ``body``."""
        given = _signature_bytes(signature)
        return given is not None and hmac.compare_digest(given, _digest(self.value, body))


def key_path(webhook_home: Path) -> Path:
    """Where the signing key of the webhook folder ``webhook_home`` is kept."""
    return webhook_home / KEY_FILE


def generate_key() -> SigningKey:
    """A new random key (URL-safe text, so it travels in JSON as it is)."""
    return SigningKey(secrets.token_urlsafe(KEY_BYTES))


def _digest(key: str, body: bytes) -> bytes:
    return hmac.new(key.encode("utf-8"), body, hashlib.sha256).digest()


def _signature_bytes(signature: str | bytes | None) -> bytes | None:
    """The digest a signature header spells (hex, else base64), or None if it spells none.

    Every well-formed value is decoded the same way whatever it holds, so the time taken says
    nothing about the key; only the final comparison looks at the digest.
    """
    if signature is None:
        return None
    text = signature.decode("ascii", "replace") if isinstance(signature, bytes) else signature
    text = text.strip()
    if not text or len(text) > MAX_SIGNATURE_CHARS:
        return None
    try:
        return bytes.fromhex(text)
    except ValueError:
        pass
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None


def write_key(path: Path, key: SigningKey) -> None:
    """Store ``key`` at ``path`` readable by its owner only, replacing any key there at once.

    Written to a private temporary file first and renamed over the old one, so a reader sees
    the old key or the new one, never a part of either, and never a moment of wider access.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.new")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, OWNER_ONLY)
    try:
        os.fchmod(descriptor, OWNER_ONLY)  # whatever the umask made of it
        os.write(descriptor, key.value.encode("utf-8") + b"\n")
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
    os.replace(temporary, path)


def read_key(path: Path) -> SigningKey:
    """The key stored at ``path``; SigningKeyError when it is missing, empty or not private."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise SigningKeyError(
            f"no webhook signing key at {path}: run `vis-pipeline webhooks subscribe` first"
        ) from None
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SigningKeyError(f"the webhook signing key {path} is readable by others: chmod 600 it")
    value = path.read_text(encoding="utf-8").strip()
    if not value:
        raise SigningKeyError(f"the webhook signing key {path} is empty")
    return SigningKey(value)


def key_or_new(path: Path) -> SigningKey:
    """The key stored at ``path``, or a new one stored there now."""
    if path.exists():
        return read_key(path)
    key = generate_key()
    write_key(path, key)
    return key
