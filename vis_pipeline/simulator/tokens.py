"""The simulator's OAuth 2.0 token endpoint: short-lived access tokens and rotating refresh tokens.

``POST /oauth2/token`` (on the server's root, outside the API's base path) takes a form-encoded
body, as RFC 6749 has it. The client authenticates with HTTP Basic or with ``client_id`` and
``client_secret`` in the body. Grants:

- ``client_credentials``: an access token, no refresh token (RFC 6749, 4.4.3);
- ``password`` (``username``, ``password``): an access token and a refresh token;
- ``refresh_token``: a new access token and a new refresh token; the one used is spent
  (rotation), so using a refresh token twice is refused like a revoked one.

Access tokens expire ``token_ttl_seconds`` after they are issued, in real time (the simulated
clock is the data's, not the tokens'). Refusals are the RFC's: 401 ``invalid_client``, 400
``invalid_grant``, ``unsupported_grant_type`` or ``invalid_request``. Control endpoints revoke
refresh tokens, expire every access token at once, and list what was issued (for leak tests).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote_plus

import orjson

from vis_pipeline.simulator.options import SimulatorOptions

TOKEN_PATH = "/oauth2/token"
"""Where the token endpoint listens, on the server's root."""

GRANTS: tuple[str, ...] = ("client_credentials", "password", "refresh_token")
"""Grant types the endpoint knows."""

_NO_STORE = [(b"cache-control", b"no-store"), (b"pragma", b"no-cache")]
"""Headers every token answer carries (RFC 6749, 5.1): tokens are not for caches."""

Reply = tuple[int, bytes, list[tuple[bytes, bytes]]]
"""Status, JSON body and extra headers of a token endpoint answer."""


class TokenRefusal(Exception):
    """A token request the endpoint refuses, with the OAuth error to answer."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description

    def reply(self) -> Reply:
        """The RFC's error answer (401 invalid_client says how to authenticate)."""
        body = orjson.dumps({"error": self.error, "error_description": self.description})
        challenge = [(b"www-authenticate", b'Basic realm="vis-simulator"')]
        return self.status, body, [*_NO_STORE, *(challenge if self.status == 401 else [])]


@dataclass
class TokenStats:
    """Token requests by grant and status, and API requests refused for an expired token."""

    requests: Counter[tuple[str, int]] = field(default_factory=Counter)
    expired: int = 0

    def count(self, grant: str, status: int) -> None:
        """Count one answered token request."""
        self.requests[(grant, status)] += 1

    def to_json(self) -> dict[str, Any]:
        """``{"requests", "issued", "refused", "by_grant": {grant: {status: n}}, "expired"}``."""
        by_grant: dict[str, dict[str, int]] = {}
        for (grant, status), count in sorted(self.requests.items()):
            by_grant.setdefault(grant, {})[str(status)] = count
        issued = sum(n for (_grant, status), n in self.requests.items() if status == 200)
        total = sum(self.requests.values())
        return {
            "requests": total,
            "issued": issued,
            "refused": total - issued,
            "by_grant": by_grant,
            "expired": self.expired,
        }

    def reset(self) -> None:
        """Forget every count."""
        self.requests.clear()
        self.expired = 0


@dataclass
class TokenIssuer:
    """Issues, checks, rotates and revokes tokens for the one client and user of the options."""

    options: SimulatorOptions
    clock: Callable[[], float] = time.monotonic
    stats: TokenStats = field(default_factory=TokenStats)
    _access: dict[bytes, float] = field(default_factory=dict)
    """Issued access tokens (as the header carries them) and the instant each expires."""
    _refresh: dict[str, bool] = field(default_factory=dict)
    """Every refresh token issued, and whether it may still be used."""

    def check(self, token: bytes) -> bool | None:
        """True for a live issued token, False for an expired one, None for one never issued."""
        expires = self._access.get(token)
        if expires is None:
            return None
        if self.clock() < expires:
            return True
        self.stats.expired += 1
        return False

    def answer(self, headers: list[tuple[bytes, bytes]], body: bytes) -> Reply:
        """The endpoint's answer to one token request (counted by grant and status)."""
        form = _form(body)
        grant = form.get("grant_type", "")
        try:
            self._authenticate_client(headers, form)
            issued = self._grant(grant, form)
        except TokenRefusal as refusal:
            self.stats.count(grant if grant in GRANTS else "other", refusal.status)
            return refusal.reply()
        self.stats.count(grant, 200)
        return 200, orjson.dumps(issued), list(_NO_STORE)

    def revoke_refresh_tokens(self, token: str | None = None) -> int:
        """Revoke one refresh token, or every one issued so far; how many were live."""
        chosen = [token] if token is not None else list(self._refresh)
        revoked = 0
        for item in chosen:
            if self._refresh.get(item):
                self._refresh[item] = False
                revoked += 1
        return revoked

    def expire_access_tokens(self) -> int:
        """End every access token's life now (a server-side logout); how many were live."""
        now = self.clock()
        live = [token for token, expires in self._access.items() if expires > now]
        for token in live:
            self._access[token] = now
        return len(live)

    def issued(self) -> dict[str, list[str]]:
        """Every access and refresh token ever issued (what a leak test searches for)."""
        return {
            "access_tokens": [token.decode("ascii")[len("Bearer ") :] for token in self._access],
            "refresh_tokens": list(self._refresh),
        }

    # -- grants ----------------------------------------------------------------------------

    def _authenticate_client(
        self, headers: list[tuple[bytes, bytes]], form: dict[str, str]
    ) -> None:
        """Check the client's id and secret, from HTTP Basic or the body (401 invalid_client)."""
        client_id, secret = _basic_credentials(headers) or (
            form.get("client_id", ""),
            form.get("client_secret", ""),
        )
        options = self.options
        if not (_same(client_id, options.client_id) and _same(secret, options.client_secret)):
            raise TokenRefusal(401, "invalid_client", "client authentication failed")

    def _grant(self, grant: str, form: dict[str, str]) -> dict[str, Any]:
        if grant == "client_credentials":
            return self._tokens(with_refresh=False)
        if grant == "password":
            user, password = form.get("username", ""), form.get("password", "")
            if not (_same(user, self.options.username) and _same(password, self.options.password)):
                raise TokenRefusal(400, "invalid_grant", "the user's name or password is wrong")
            return self._tokens(with_refresh=True)
        if grant == "refresh_token":
            self._spend_refresh_token(form.get("refresh_token", ""))
            return self._tokens(with_refresh=True)
        if not grant:
            raise TokenRefusal(400, "invalid_request", "grant_type is missing")
        raise TokenRefusal(400, "unsupported_grant_type", f"grant_type {grant!r} is not supported")

    def _spend_refresh_token(self, token: str) -> None:
        """Use a refresh token up (rotation); invalid_grant when unknown, spent or revoked."""
        if not self._refresh.get(token):
            raise TokenRefusal(400, "invalid_grant", "the refresh token is invalid or revoked")
        self._refresh[token] = False

    def _tokens(self, *, with_refresh: bool) -> dict[str, Any]:
        ttl = self.options.token_ttl_seconds
        access = "sim-at-" + secrets.token_urlsafe(24)
        self._access[b"Bearer " + access.encode("ascii")] = self.clock() + ttl
        issued: dict[str, Any] = {
            "access_token": access,
            "token_type": "Bearer",
            # Whole seconds, as servers usually write it; a fraction only when there is one.
            "expires_in": int(ttl) if ttl == int(ttl) else ttl,
        }
        if with_refresh:
            refresh = "sim-rt-" + secrets.token_urlsafe(24)
            self._refresh[refresh] = True
            issued["refresh_token"] = refresh
        return issued


def _form(body: bytes) -> dict[str, str]:
    """A form-encoded body as a dict (the last value of a repeated field wins)."""
    return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


def _basic_credentials(headers: list[tuple[bytes, bytes]]) -> tuple[str, str] | None:
    """(client id, secret) from an HTTP Basic ``Authorization`` header, or None without one.

    RFC 6749 (2.3.1) form-encodes both before joining them, so they are decoded here too.
    """
    for name, value in headers:
        if name == b"authorization" and value[:6].lower() == b"basic ":
            try:
                pair = base64.b64decode(value[6:], validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                return ("", "")
            client_id, _, secret = pair.partition(":")
            return unquote_plus(client_id), unquote_plus(secret)
    return None


def _same(given: str, expected: str) -> bool:
    """Constant-time comparison of two credentials."""
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))
