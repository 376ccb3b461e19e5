"""Where the client's access tokens come from, and how they are renewed.

A :class:`TokenProvider` hands the client a token for each request (``token``) and a newer one
when the API refused it with a 401 (``refresh``). Three providers, chosen by the settings:

- :class:`StaticToken` (``VIS_ACCESS_TOKEN``): one token, used as it is, never renewed;
- :class:`OAuthToken` (``VIS_TOKEN_URL``): OAuth 2.0, the ``client_credentials`` grant, or the
  ``password`` grant and the refresh token it brings; a token is renewed a margin before its
  ``expires_in`` runs out, and once more when the API refuses it anyway;
- :class:`CommandToken` (``VIS_TOKEN_COMMAND``): a command (a secret manager's client) prints
  the token; it runs again when the token's configured life is over.

One provider serves every thread of a client, and every client built from the same
``ClientSettings``: a lock lets one caller renew the token while the others wait for its
result, and ``refresh(stale)`` renews only when ``stale`` is still the current token, so the
200 requests that meet one expired token cause one token request, not 200. A provider that
was refused a credential remembers it and raises the same error at once from then on: a run
spends a bounded number of token requests however many pages it still had to fetch.

Crossing to the extraction process (``extract_process.py``) a provider is pickled as its
configuration plus the access token it holds and when that expires, and nothing else: never a
refresh token. Refresh tokens may rotate (each use spends the old one, and a server may treat
a second use as theft and revoke the whole family), so two processes holding the same one would
sooner or later use it twice. The child therefore starts on the parent's access token, and when
that runs out it signs in on its own with the primary grant (client credentials, or user and
password), which gives it a refresh token of its own. The cost is one extra token request per
extraction process; the parent's refresh token is never used anywhere but in the parent.

A refused refresh token ends the run rather than signing in again with the password: a refresh
token is refused because it was revoked (or expired), and a revoked session must stay revoked.
The next run signs in afresh. Every message names the credential involved, never its value.
"""

from __future__ import annotations

import copy
import math
import os
import shlex
import subprocess
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx
import orjson

from vis_pipeline.errors import VISError, VISRetriesExhausted, VISTokenError, VISTransportError
from vis_pipeline.retry import RetryPolicy
from vis_pipeline.settings import DEFAULTS, Settings

COMMAND_TIMEOUT_SECONDS = 30.0
"""How long VIS_TOKEN_COMMAND may take (a secret manager's client signing in can be slow)."""

MARGIN_SHARE = 0.2
"""Largest share of a token's life given up to renew it early: VIS_TOKEN_MARGIN_SECONDS (a
minute) is right for hour-long tokens, a fifth of the life for very short ones."""

REDACTED = "[redacted]"
"""What a secret is replaced with in any text the project produces."""

MIN_SCRUBBED_ARGUMENT = 8
"""Shortest argument of VIS_TOKEN_COMMAND scrubbed from its error output: a credential is
longer, and scrubbing short words (``get``, ``-f``) would garble the message for nothing."""

REMEMBERED_TOKENS = 8
"""Tokens a provider keeps in mind after replacing them, so a late message quoting one is
still scrubbed."""

MAX_DETAIL = 200
"""Characters of a token endpoint's or command's own explanation quoted in an error."""

CLIENT_CREDENTIALS = "the client credentials (VIS_CLIENT_ID, VIS_CLIENT_SECRET)"
USER_CREDENTIALS = "the user's credentials (VIS_USERNAME, VIS_PASSWORD)"
REFRESH_TOKEN = "the refresh token (from the password grant)"
"""What a token endpoint's refusal is about, as the error names it (never the values)."""

_FORM = {"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"}


class TokenProvider(Protocol):
    """Where a client gets the bearer token of each request."""

    def token(self) -> str:
        """A token to send now: the current one while it is fresh, else a renewed one."""
        ...

    def refresh(self, stale: str) -> str:
        """A token newer than ``stale``, which the API just refused; ``stale`` itself when no
        newer one can be had (then the refusal stands)."""
        ...

    def secrets(self) -> tuple[str, ...]:
        """Every secret this provider holds or held, to scrub from any text."""
        ...


def token_provider(settings: Settings) -> TokenProvider:
    """The provider the settings choose (the settings allow one source at most)."""
    if settings.token_url:
        return OAuthToken(OAuthConfig.from_settings(settings))
    if settings.token_command:
        return CommandToken(settings.token_command, settings.token_command_ttl_seconds)
    return StaticToken(settings.access_token)


def has_credentials(settings: Settings) -> bool:
    """Whether the settings give the client any way to a token."""
    return bool(settings.access_token or settings.token_url or settings.token_command)


def secrets_of(token: str | TokenProvider) -> tuple[str, ...]:
    """The secrets of a static token or a provider."""
    if isinstance(token, str):
        return (token,) if token else ()
    return token.secrets()


def scrub_secrets(text: str, secrets: Iterable[str]) -> str:
    """``text`` without any secret, also in the escaped spellings repr() gives them."""
    for secret in sorted(filter(None, secrets), key=len, reverse=True):
        spellings = {secret, repr(secret)[1:-1], repr(secret.encode("utf-8", "replace"))[2:-1]}
        for spelling in sorted(spellings, key=len, reverse=True):
            text = text.replace(spelling, REDACTED)
    return text


class StaticToken:
    """One token, used as it is: nothing newer can be had, so a 401 stands."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __repr__(self) -> str:
        return "StaticToken()"

    def token(self) -> str:
        """The token."""
        return self._token

    def refresh(self, stale: str) -> str:
        """The same token: a static token cannot be renewed."""
        return self._token

    def secrets(self) -> tuple[str, ...]:
        """The token."""
        return (self._token,) if self._token else ()


class _RenewedToken:
    """A token fetched from a source, used while fresh, renewed by one caller at a time.

    Subclasses say how a token is fetched (``_fetch``: the token and its life in seconds, None
    when unknown) and what configuration rebuilds them in another process (``_config``).
    """

    def __init__(self, margin_seconds: float) -> None:
        self._margin = margin_seconds
        self._lock = threading.Lock()
        self._token = ""
        self._fresh_until = -math.inf
        """Monotonic instant after which the token is renewed before use."""
        self._expires_at = -math.inf
        """Monotonic instant the token's life ends (for the hand-over to another process)."""
        self._used: tuple[str, ...] = ()
        """Tokens held lately: a tuple replaced whole, so reading it needs no lock."""
        self._failure: VISError | None = None

    # -- the protocol ------------------------------------------------------------------------

    def token(self) -> str:
        """The current token while fresh; else one caller renews it and the others wait."""
        token = self._token
        if token and time.monotonic() < self._fresh_until:
            return token  # the hot path of every request: no lock
        with self._lock:
            if self._token and time.monotonic() < self._fresh_until:
                return self._token  # renewed by another caller while this one waited
            return self._renew()

    def refresh(self, stale: str) -> str:
        """A token newer than ``stale``: the one another caller got meanwhile, or a new one."""
        with self._lock:
            if self._token != stale and time.monotonic() < self._fresh_until:
                return self._token
            return self._renew()

    def secrets(self) -> tuple[str, ...]:
        """Tokens held now and lately, and the credentials behind them."""
        return (*self._used, *self._credentials())

    # -- renewing ----------------------------------------------------------------------------

    def _renew(self) -> str:
        """Fetch a token (the lock held); a failure is remembered and raised again at once."""
        if self._failure is not None:
            raise copy.copy(self._failure)
        started = time.monotonic()
        try:
            token, life = self._fetch()
        except VISError as exc:
            self._failure = exc
            raise
        self._adopt(token, started, life)
        return token

    def _adopt(self, token: str, started: float, life: float | None) -> None:
        """Use ``token`` from now on; it was asked for at ``started`` and lives ``life`` s."""
        self._token = token
        self._remember(token)
        if life is None:
            # No expiry given: used until the API refuses it.
            self._fresh_until = self._expires_at = math.inf
            return
        self._expires_at = started + life
        self._fresh_until = self._expires_at - min(self._margin, life * MARGIN_SHARE)

    def _remember(self, secret: str) -> None:
        self._used = (*self._used[1 - REMEMBERED_TOKENS :], secret)

    def _fetch(self) -> tuple[str, float | None]:
        raise NotImplementedError

    def _credentials(self) -> tuple[str, ...]:
        return ()

    def _config(self) -> tuple[Any, ...]:
        raise NotImplementedError

    # -- crossing to another process ---------------------------------------------------------

    def __reduce__(self) -> tuple[Any, ...]:
        # The configuration and the access token now held, with its deadlines on the wall
        # clock (a monotonic clock means nothing in another process); never a refresh token.
        with self._lock:
            now_wall, now = time.time(), time.monotonic()
            handed = None
            if self._token and now < self._expires_at:
                handed = (
                    self._token,
                    now_wall + (self._fresh_until - now),
                    now_wall + (self._expires_at - now),
                )
        return (type(self), self._config(), {"handed": handed})

    def __setstate__(self, state: dict[str, Any]) -> None:
        handed = state.get("handed")
        if handed is None:
            return
        token, fresh_until, expires_at = handed
        shift = time.monotonic() - time.time()
        self._token = token
        self._remember(token)
        self._fresh_until, self._expires_at = fresh_until + shift, expires_at + shift


# -- OAuth 2.0 -------------------------------------------------------------------------------


@dataclass(frozen=True)
class OAuthConfig:
    """Where and how to ask for tokens; the secrets stay out of the repr."""

    token_url: str
    grant: str
    client_id: str
    client_secret: str = field(default="", repr=False)
    username: str = ""
    password: str = field(default="", repr=False)
    margin_seconds: float = DEFAULTS.token_margin_seconds
    timeout_seconds: float = DEFAULTS.timeout_seconds
    max_attempts: int = DEFAULTS.max_retries + 1

    @classmethod
    def from_settings(cls, settings: Settings) -> OAuthConfig:
        """The OAuth configuration the settings describe."""
        return cls(
            token_url=settings.token_url,
            grant=settings.token_grant,
            client_id=settings.client_id,
            client_secret=settings.client_secret,
            username=settings.username,
            password=settings.password,
            margin_seconds=settings.token_margin_seconds,
            timeout_seconds=settings.timeout_seconds,
            max_attempts=settings.max_retries + 1,
        )


class OAuthToken(_RenewedToken):
    """Tokens from an OAuth 2.0 token endpoint (form-encoded POST, RFC 6749).

    The client's id and secret travel in the form, as Vonage's own examples send them. With the
    password grant, the refresh token of each answer is used for the next renewal (and replaced
    by the one that answer brings, should the server rotate them).
    """

    def __init__(self, config: OAuthConfig) -> None:
        super().__init__(config.margin_seconds)
        self.config = config
        self._refresh_token = ""
        self._retry = RetryPolicy(max_attempts=config.max_attempts)

    def __repr__(self) -> str:
        return f"OAuthToken(token_url={self.config.token_url!r}, grant={self.config.grant!r})"

    def _config(self) -> tuple[Any, ...]:
        return (self.config,)

    def _credentials(self) -> tuple[str, ...]:
        config = self.config
        return tuple(s for s in (self._refresh_token, config.client_secret, config.password) if s)

    def _fetch(self) -> tuple[str, float | None]:
        grant = "refresh_token" if self._refresh_token else self.config.grant
        answer = self._post(grant, self._form(grant))
        refresh_token = answer.get("refresh_token")
        if isinstance(refresh_token, str) and refresh_token:
            self._refresh_token = refresh_token
            self._remember(refresh_token)
        return _access_token(answer), _life(answer.get("expires_in"))

    def _form(self, grant: str) -> dict[str, str]:
        config = self.config
        form = {"grant_type": grant, "client_id": config.client_id}
        if config.client_secret:
            form["client_secret"] = config.client_secret
        if grant == "refresh_token":
            form["refresh_token"] = self._refresh_token
        elif grant == "password":
            form.update(username=config.username, password=config.password)
        return form

    def _post(self, grant: str, form: dict[str, str]) -> dict[str, Any]:
        """The token endpoint's JSON answer; retried as the client retries a POST."""
        policy = self._retry
        tls = self.config.token_url.startswith("https://")
        with httpx.Client(timeout=self.config.timeout_seconds, verify=tls) as http:
            attempt = 0
            while True:
                attempt += 1
                try:
                    response = http.post(self.config.token_url, data=form, headers=_FORM)
                except httpx.HTTPError as exc:
                    cause = scrub_secrets(f"{type(exc).__name__}: {exc}", self.secrets())
                    if not policy.retries_exception(exc, idempotent=False):
                        raise VISTransportError(f"token: {cause}; not retried") from None
                else:
                    if response.status_code == 200:
                        return self._answer(response)
                    if not policy.retries_status(response.status_code):
                        raise self._refusal(grant, response)
                    cause = f"HTTP {response.status_code}"
                if attempt >= policy.max_attempts:
                    raise VISRetriesExhausted("token", attempt, cause) from None
                policy.sleep(policy.delay_for(attempt))

    def _answer(self, response: httpx.Response) -> dict[str, Any]:
        try:
            answer = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            answer = None
        if not isinstance(answer, dict):
            raise VISTokenError("VIS_TOKEN_URL", "answered 200 without a JSON object", 200)
        return answer

    def _refusal(self, grant: str, response: httpx.Response) -> VISTokenError:
        """The error naming the credential the token endpoint refused."""
        status = response.status_code
        error, description = _oauth_error(response)
        detail = f"HTTP {status}" + (f" {error}" if error else "")
        if description:
            detail += f": {scrub_secrets(description, self.secrets())[:MAX_DETAIL]}"
        if error == "invalid_client" or status == 401:
            return VISTokenError(CLIENT_CREDENTIALS, f"were refused ({detail})", status)
        if error == "invalid_grant":
            if grant == "refresh_token":
                why = f"was refused ({detail}): revoked, spent or expired"
                return VISTokenError(REFRESH_TOKEN, why, status)
            refused = USER_CREDENTIALS if grant == "password" else CLIENT_CREDENTIALS
            return VISTokenError(refused, f"were refused ({detail})", status)
        if error in ("unauthorized_client", "unsupported_grant_type"):
            why = f"is not allowed for this client ({detail})"
            return VISTokenError(f"VIS_TOKEN_GRANT={self.config.grant}", why, status)
        return VISTokenError("VIS_TOKEN_URL", f"refused the token request ({detail})", status)


def _oauth_error(response: httpx.Response) -> tuple[str, str]:
    """(``error``, ``error_description``) of a token endpoint's refusal, empty when absent."""
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return "", ""
    if not isinstance(body, dict):
        return "", ""
    error, description = body.get("error"), body.get("error_description")
    return (
        _one_line(error) if isinstance(error, str) else "",
        _one_line(description) if isinstance(description, str) else "",
    )


def _access_token(answer: dict[str, Any]) -> str:
    token = answer.get("access_token")
    if not isinstance(token, str) or not token:
        raise VISTokenError("VIS_TOKEN_URL", "answered without an access_token", 200)
    if not _header_safe(token):
        raise VISTokenError("VIS_TOKEN_URL", "gave a token an HTTP header cannot carry", 200)
    return token


def _life(expires_in: Any) -> float | None:
    """Seconds a token lives, from ``expires_in`` (a number, or a numeric string); None if not
    given, when the token is used until the API refuses it."""
    if isinstance(expires_in, bool):
        return None
    try:
        life = float(expires_in)
    except (TypeError, ValueError):
        return None
    return life if math.isfinite(life) and life > 0 else None


# -- a command -------------------------------------------------------------------------------


class CommandToken(_RenewedToken):
    """Tokens printed by a command, run without a shell, at most once per ``ttl_seconds``.

    The command inherits the environment (a secret manager's client finds its own credentials
    there); its standard output, stripped, must be the token alone.
    """

    def __init__(
        self, command: str, ttl_seconds: float, timeout_seconds: float = COMMAND_TIMEOUT_SECONDS
    ) -> None:
        # The configured life is the whole of it: no margin is taken off.
        super().__init__(margin_seconds=0.0)
        self._command = command
        self._ttl = ttl_seconds
        self._timeout = timeout_seconds

    def __repr__(self) -> str:
        return f"CommandToken(ttl_seconds={self._ttl:g})"

    def _config(self) -> tuple[Any, ...]:
        return (self._command, self._ttl, self._timeout)

    def _arguments(self) -> list[str]:
        try:
            arguments = shlex.split(self._command)
        except ValueError as exc:
            raise VISTokenError(
                "VIS_TOKEN_COMMAND", f"cannot be read as a command ({exc})"
            ) from None
        if not arguments:
            raise VISTokenError("VIS_TOKEN_COMMAND", "is empty")
        return arguments

    def _fetch(self) -> tuple[str, float | None]:
        arguments = self._arguments()
        program = os.path.basename(arguments[0])
        try:
            done = subprocess.run(
                arguments,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=self._timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            why = f"did not finish within {self._timeout:g} s"
            raise VISTokenError("VIS_TOKEN_COMMAND", why) from None
        except OSError as exc:
            why = f"could not be run ({program}: {exc.strerror or type(exc).__name__})"
            raise VISTokenError("VIS_TOKEN_COMMAND", why) from None
        token = done.stdout.decode("utf-8", "replace").strip()
        if done.returncode != 0:
            said = self._last_line(done.stderr, arguments[1:], token)
            why = f"failed with exit status {done.returncode}" + (f": {said}" if said else "")
            raise VISTokenError("VIS_TOKEN_COMMAND", why)
        if not token:
            raise VISTokenError("VIS_TOKEN_COMMAND", "printed no token")
        if len(token.split()) > 1 or not _header_safe(token):
            raise VISTokenError("VIS_TOKEN_COMMAND", "printed more than a token alone")
        return token, self._ttl

    def _last_line(self, stderr: bytes, arguments: list[str], printed: str) -> str:
        """The command's last word on standard error, without its arguments (which may carry
        a credential), what it printed, or any token seen before."""
        lines = [line for line in stderr.decode("utf-8", "replace").splitlines() if line.strip()]
        if not lines:
            return ""
        long_enough = [word for word in arguments if len(word) >= MIN_SCRUBBED_ARGUMENT]
        hidden = (*long_enough, printed, *self.secrets())
        return scrub_secrets(_one_line(lines[-1]), hidden)[:MAX_DETAIL]


def _header_safe(token: str) -> bool:
    """Whether ``token`` can travel in an HTTP header as it is."""
    return token.isascii() and token.isprintable()


def _one_line(text: str) -> str:
    return " ".join(text.split())
