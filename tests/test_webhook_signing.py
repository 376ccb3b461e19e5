"""The signing key and the signature: checked with ``hmac`` written out here, not the module's."""

from __future__ import annotations

import base64
import hashlib
import hmac
import stat
from pathlib import Path

import pytest

from vis_pipeline.webhook_signing import (
    SigningKey,
    SigningKeyError,
    generate_key,
    key_or_new,
    read_key,
    write_key,
)

BODY = b'{"id":1,"type":"CALL","state":"RINGING"}'


def _digest(key: str, body: bytes) -> bytes:
    return hmac.new(key.encode(), body, hashlib.sha256).digest()


def test_hex_and_base64_signatures_of_the_exact_body_are_accepted_others_not() -> None:
    key = SigningKey("k-0123456789")
    digest = _digest(key.value, BODY)
    assert key.sign(BODY) == digest.hex()
    for good in (digest.hex(), digest.hex().upper(), base64.b64encode(digest).decode()):
        assert key.verifies(BODY, good)
        assert key.verifies(BODY, good.encode())
    for bad in (
        _digest("another key", BODY).hex(),
        _digest(key.value, BODY + b" ").hex(),
        digest.hex()[:-2],
        "",
        "not a signature",
        "a" * 1000,
        None,
    ):
        assert not key.verifies(BODY, bad)


def test_a_generated_key_is_strong_and_never_shown() -> None:
    keys = {generate_key().value for _ in range(20)}
    assert len(keys) == 20 and all(len(value) >= 43 for value in keys)
    key = generate_key()
    assert key.value not in repr(key) and key.value not in str(key)


def test_the_key_file_is_private_and_replaced_whole(tmp_path: Path) -> None:
    path = tmp_path / "webhook" / "signing-key"
    first = key_or_new(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert key_or_new(path) == first == read_key(path)
    second = generate_key()
    write_key(path, second)
    assert read_key(path) == second and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["signing-key"]


def test_a_key_readable_by_others_or_missing_is_refused_without_showing_it(tmp_path: Path) -> None:
    path = tmp_path / "signing-key"
    with pytest.raises(SigningKeyError, match="no webhook signing key"):
        read_key(path)
    key = key_or_new(path)
    path.chmod(0o644)
    with pytest.raises(SigningKeyError, match="readable by others") as refused:
        read_key(path)
    assert key.value not in str(refused.value)
