"""The webhook receiver: an ASGI app that checks each delivery and spools it before answering.

For every POST (any path: the URL is whatever was subscribed):

1. a body larger than ``VIS_RECEIVER_MAX_BODY_BYTES`` is refused with 413, before it is read
   when its length is announced;
2. a missing ``X-VON-Signature`` (the project subscribes with metadataPolicy HEADER), or one
   that is not the HMAC-SHA256 of the raw body under the signing key, is refused with 401;
3. a body that is not a JSON object is refused with 400;
4. the delivery is appended to the spool and ``fsync``ed, and only then answered 200, so an
   acknowledged delivery survives the process being killed the next instant. Appends that
   arrive together share one ``fsync`` (group commit), so the disk's latency is paid once per
   batch, not per delivery. A store that takes longer than ``STORE_SECONDS`` is answered 503:
   the API wants an answer within 2 s, and the sender will try again.

Nothing is parsed beyond that: what the body holds is the drain's business (a valid signature
proves who sent it, and a record the warehouse refuses is quarantined there, not bounced back
to a sender that would only retry it). Refusals are logged with their reason and size only, a
line per reason at most every ``LOG_EVERY_SECONDS``; neither the key nor a body is ever logged.
``GET /healthz`` answers the counts.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson
import uvicorn

from vis_pipeline.settings import Settings
from vis_pipeline.spool import SpoolEntry, SpoolWriter, spool_folder
from vis_pipeline.webhook_signing import SigningKey, SigningKeyError, key_path, read_key

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

SIGNATURE_HEADER = b"x-von-signature"
DELIVERY_HEADER = b"x-von-delivery-id"
WEBHOOK_HEADER = b"x-von-webhook-id"

MAX_ID_CHARS = 128
"""Longest delivery or webhook id kept from a header."""

STORE_SECONDS = 1.5
"""Longest a delivery waits for the spool before it is answered 503 (the API allows 2 s)."""

LOG_EVERY_SECONDS = 10.0
"""Refusals of one reason are logged at most once per this many seconds (with a count)."""

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
"""How the receiver's own log lines read (on stderr)."""

LISTEN_BACKLOG = 2048
"""Connections the socket queues (a sender retrying a burst opens many at once)."""

log = logging.getLogger(__name__)


class Refused(Exception):
    """A delivery that is not accepted: the status to answer and the reason to count."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class KeyFile:
    """The signing key file, read again whenever it changes (a new subscription's key)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self._key = read_key(path)  # refuse to start without a usable key
        self._stamp = self._current_stamp()

    def __repr__(self) -> str:
        return f"KeyFile({self.path.name!r})"

    def _current_stamp(self) -> tuple[int, int] | None:
        try:
            info = self.path.stat()
        except FileNotFoundError:
            return None
        return info.st_ino, info.st_mtime_ns

    def key(self) -> SigningKey:
        """The key in force; the one read last if the file became unreadable."""
        stamp = self._current_stamp()
        if stamp is not None and stamp != self._stamp:
            try:
                self._key = read_key(self.path)
            except (SigningKeyError, OSError) as exc:
                log.error("kept the previous signing key: %s", exc)
            self._stamp = stamp
        return self._key


class GroupCommitter:
    """Appends entries to the spool from the event loop, one ``fsync`` per batch.

    Entries that arrive while a write is under way wait for the next one, which takes them all;
    one thread writes, so the loop goes on accepting requests meanwhile.
    """

    def __init__(self, writer: SpoolWriter) -> None:
        self._writer = writer
        self._waiting: list[tuple[SpoolEntry, asyncio.Future[None]]] = []
        self._writing = False
        self._task: asyncio.Task[None] | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="spool")

    async def append(self, entry: SpoolEntry) -> None:
        """Return once ``entry`` is on disk (raises what the write raised)."""
        loop = asyncio.get_running_loop()
        stored: asyncio.Future[None] = loop.create_future()
        self._waiting.append((entry, stored))
        if not self._writing:
            self._writing = True
            self._task = loop.create_task(self._write_batches())
        await stored

    async def _write_batches(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, []
                try:
                    await loop.run_in_executor(
                        self._thread, self._writer.append, [entry for entry, _ in batch]
                    )
                except OSError as exc:
                    for _, stored in batch:
                        if not stored.done():
                            stored.set_exception(exc)
                else:
                    for _, stored in batch:
                        if not stored.done():
                            stored.set_result(None)
        finally:
            self._writing = False

    def close(self) -> None:
        """Stop the writing thread and seal the segment."""
        self._thread.shutdown(wait=True)
        self._writer.close()


class Receiver:
    """The ASGI application: check, spool, answer."""

    def __init__(self, key_file: KeyFile, writer: SpoolWriter, max_body_bytes: int) -> None:
        self._keys = key_file
        self._committer = GroupCommitter(writer)
        self._max_body = max_body_bytes
        self.accepted = 0
        self.refused: Counter[str] = Counter()
        self._unlogged: Counter[str] = Counter()
        self._logged_at: dict[str, float] = {}

    def __repr__(self) -> str:
        return f"Receiver(accepted={self.accepted})"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        if scope["method"] == "GET" and scope["path"] == "/healthz":
            await _answer(send, 200, orjson.dumps(self.health()))
            return
        if scope["method"] != "POST":
            await _answer(send, 405, b"", [(b"allow", b"POST")])
            return
        try:
            await self._accept(scope, receive)
        except Refused as refusal:
            self._note_refusal(refusal.reason)
            await _answer(send, refusal.status, b"")
            return
        self.accepted += 1
        await _answer(send, 200, b"")

    async def _accept(self, scope: Scope, receive: Receive) -> None:
        """Check the delivery and spool it; Refused when it is not accepted."""
        headers = dict(scope["headers"])
        announced = headers.get(b"content-length", b"0")
        if not announced.isdigit() or int(announced) > self._max_body:
            raise Refused(413, "body too large")
        body = await _read_body(receive, self._max_body)
        signature = headers.get(SIGNATURE_HEADER)
        if signature is None:
            raise Refused(401, "no signature")
        if not self._keys.key().verifies(body, signature):
            raise Refused(401, "bad signature")
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise Refused(400, "malformed JSON") from None
        if not isinstance(parsed, dict):
            raise Refused(400, "not a JSON object")
        entry = SpoolEntry(
            received_ms=time.time_ns() // 1_000_000,
            body=body,
            delivery_id=_header_text(headers.get(DELIVERY_HEADER)),
            webhook_id=_header_text(headers.get(WEBHOOK_HEADER)),
        )
        await self._store(entry)

    async def _store(self, entry: SpoolEntry) -> None:
        """Spool ``entry``, or Refused 503 when the spool fails or is too slow."""
        try:
            await asyncio.wait_for(asyncio.shield(self._committer.append(entry)), STORE_SECONDS)
        except TimeoutError:
            raise Refused(503, "spool too slow") from None
        except OSError as exc:
            log.error("could not spool a delivery: %s", os.strerror(exc.errno or 0))
            raise Refused(503, "spool failed") from None

    def _note_refusal(self, reason: str) -> None:
        """Count a refusal; log its reason now and then (never the body or the key)."""
        self.refused[reason] += 1
        self._unlogged[reason] += 1
        now = time.monotonic()
        if now - self._logged_at.get(reason, -LOG_EVERY_SECONDS) >= LOG_EVERY_SECONDS:
            log.warning("deliveries refused (%s): %d", reason, self._unlogged.pop(reason))
            self._logged_at[reason] = now

    def health(self) -> dict[str, Any]:
        """What ``GET /healthz`` answers: counts only."""
        return {"accepted": self.accepted, "refused": dict(self.refused)}

    def close(self) -> None:
        """Seal the spool segment (the server has stopped taking requests)."""
        self._committer.close()


def _header_text(value: bytes | None) -> str | None:
    """A header's value as text, cut to MAX_ID_CHARS (None when absent)."""
    if value is None:
        return None
    return value[:MAX_ID_CHARS].decode("ascii", "replace")


async def _read_body(receive: Receive, limit: int) -> bytes:
    """The whole request body; Refused 413 as soon as it passes ``limit``."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise Refused(400, "client left")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise Refused(413, "body too large")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _answer(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    start = [(b"content-length", str(len(body)).encode()), *(headers or [])]
    if body:
        start.append((b"content-type", b"application/json"))
    await send({"type": "http.response.start", "status": status, "headers": start})
    await send({"type": "http.response.body", "body": body})


class _AnnouncingServer(uvicorn.Server):
    """A uvicorn server that says where it listens, once it does: one JSON line on stdout."""

    def __init__(self, config: uvicorn.Config, url: str) -> None:
        super().__init__(config)
        self._url = url

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        if self.started:
            line = orjson.dumps({"url": self._url, "pid": os.getpid()})
            sys.stdout.buffer.write(line + b"\n")
            sys.stdout.flush()


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host``:``port`` (port 0: a free one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(LISTEN_BACKLOG)
    return sock


def build_receiver(settings: Settings) -> Receiver:
    """The receiver of ``settings``: its key file and its own spool segment."""
    home = settings.webhook_path
    return Receiver(
        KeyFile(key_path(home)), SpoolWriter(spool_folder(home)), settings.receiver_max_body_bytes
    )


def serve(settings: Settings, host: str, port: int) -> None:
    """Receive deliveries on ``host``:``port`` until SIGINT or SIGTERM (SigningKeyError first
    when there is no usable key). Prints ``{"url", "pid"}`` once it listens."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    app = build_receiver(settings)
    sock = bind(host, port)
    bound_host, bound_port = sock.getsockname()[:2]
    netloc = f"[{bound_host}]:{bound_port}" if ":" in bound_host else f"{bound_host}:{bound_port}"
    config = uvicorn.Config(
        app,
        http="httptools",
        loop="uvloop",
        access_log=False,
        log_level="warning",
        lifespan="off",
        backlog=LISTEN_BACKLOG,
        timeout_graceful_shutdown=2,
    )
    try:
        _AnnouncingServer(config, f"http://{netloc}/").run(sockets=[sock])
    finally:
        app.close()
        sock.close()
