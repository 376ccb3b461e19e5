"""A lean HTTP/1.1 client for webhook deliveries: POST, keep-alive, nothing else.

The simulator shares one event loop between the API it serves, the clock's moves and the
deliveries; a general-purpose client spends several times more of that loop per request than
the receiver spends answering it, so a busy clock would queue deliveries behind the sender
rather than behind the receiver under test. This one writes a request in one call and reads a
status line, headers and a ``Content-Length`` (or chunked, or until close) body, and keeps
connections open per host for the next delivery. ``https`` URLs go through the default TLS
context.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import defaultdict
from urllib.parse import urlsplit

NO_ANSWER = 0
"""Status of an attempt that got no HTTP answer (refused, timed out, cut short)."""

MAX_HEADER_LINES = 100
"""Response header lines read at most."""

Address = tuple[str, str, int]
"""Scheme, host and port of a connection."""

Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class Sender:
    """POSTs bodies to URLs, keeping connections open per address."""

    def __init__(self, connect_seconds: float, answer_seconds: float) -> None:
        self._connect_seconds = connect_seconds
        self._answer_seconds = answer_seconds
        self._idle: defaultdict[Address, list[Connection]] = defaultdict(list)
        self._tls = ssl.create_default_context()

    async def post(self, url: str, body: bytes, headers: list[tuple[str, str]]) -> int:
        """POST ``body`` to ``url``: the answer's status, or NO_ANSWER."""
        parts = urlsplit(url)
        scheme = parts.scheme or "http"
        port = parts.port or (443 if scheme == "https" else 80)
        address = (scheme, parts.hostname or "", port)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        head = [f"POST {target} HTTP/1.1", f"Host: {parts.netloc}"]
        head += [f"{name}: {value}" for name, value in headers]
        head.append(f"Content-Length: {len(body)}")
        request = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body
        try:
            connection = await self._connection(address)
        except (OSError, TimeoutError):
            return NO_ANSWER
        try:
            reader, writer = connection
            writer.write(request)
            status, keep = await asyncio.wait_for(_read_answer(reader), self._answer_seconds)
        except (OSError, TimeoutError, ValueError, asyncio.IncompleteReadError):
            _close(connection)
            return NO_ANSWER
        if keep:
            self._idle[address].append(connection)
        else:
            _close(connection)
        return status

    async def _connection(self, address: Address) -> Connection:
        """An idle connection to ``address``, or a new one."""
        idle = self._idle[address]
        while idle:
            connection = idle.pop()
            if not connection[0].at_eof():
                return connection
            _close(connection)
        scheme, host, port = address
        opening = asyncio.open_connection(host, port, ssl=self._tls if scheme == "https" else None)
        return await asyncio.wait_for(opening, self._connect_seconds)

    def close(self) -> None:
        """Close every idle connection."""
        for connections in self._idle.values():
            for connection in connections:
                _close(connection)
        self._idle.clear()


async def _read_answer(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """The status of the answer, and whether the connection may carry another request."""
    status_line = await reader.readuntil(b"\r\n")
    version, status, *_ = status_line.decode("latin-1").split(" ", 2)
    length: int | None = None
    chunked = False
    keep = version == "HTTP/1.1"
    for _ in range(MAX_HEADER_LINES):
        line = await reader.readuntil(b"\r\n")
        if line == b"\r\n":
            break
        name, _, value = line.decode("latin-1").partition(":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == "content-length":
            length = int(value)
        elif name == "transfer-encoding":
            chunked = "chunked" in value
        elif name == "connection":
            keep = value == "keep-alive" or (keep and value != "close")
    else:
        raise ValueError("too many header lines")
    if chunked:
        await _skip_chunks(reader)
    elif length is not None:
        await reader.readexactly(length)
    else:
        await reader.read()  # the body runs to the end of the connection
        keep = False
    return int(status), keep


async def _skip_chunks(reader: asyncio.StreamReader) -> None:
    while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
        await reader.readexactly(size + 2)
    while await reader.readuntil(b"\r\n") != b"\r\n":
        pass  # trailers


def _close(connection: Connection) -> None:
    connection[1].close()
