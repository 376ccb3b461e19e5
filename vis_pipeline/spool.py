"""The spool: accepted webhook deliveries, on disk before they are acknowledged.

A folder of append-only segment files. A writer (one per receiver process) appends a batch of
records in one ``write`` and ``fsync``s before anyone is told they are stored; a drain reads
what lies past its committed offsets, loads it, and only then records the new offsets. A
segment is deleted once it is sealed (no writer will append to it again) and every record in it
is committed, so nothing leaves the spool before the warehouse holds it.

- **Frames.** ``MAGIC | payload length | CRC-32 | payload``, the payload being the receive
  time, a little metadata (delivery and webhook ids) and the body exactly as received. A
  frame cut short (a writer killed mid-write: never acknowledged) ends what is read; so does a
  frame whose checksum fails.
- **Sealing.** A writer holds an exclusive ``flock`` on its segment for as long as it may
  append; the lock dies with the process, even on ``kill -9``. A segment nobody holds is sealed.
  A new segment is created under a hidden name, locked, and only then renamed into view, so the
  drain never sees a segment its writer does not hold yet. Writers move to a new segment when
  the current one is large or old, so sealed segments appear and can be deleted while a
  receiver runs for months.
- **Offsets.** ``committed.json`` maps each segment to the end of its last committed record; it
  is replaced atomically (temporary file, ``fsync``, rename, ``fsync`` of the folder). A drain
  killed after its warehouse commit but before this write reads the same records again: the
  warehouse merge makes that harmless.
"""

from __future__ import annotations

import fcntl
import os
import struct
import tempfile
import time
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import orjson

MAGIC = b"VSP1"
"""First bytes of every frame."""

_HEADER = struct.Struct(">4sII")
"""Frame header: magic, payload length, CRC-32 of the payload."""

_PAYLOAD = struct.Struct(">qH")
"""Payload head: receive time (epoch ms), length of the metadata JSON."""

SPOOL_FOLDER = "spool"
"""The spool's folder inside the webhook folder (VIS_WEBHOOK_HOME)."""

SEGMENT_SUFFIX = ".seg"
"""Extension of segment files (names sort in creation order)."""

COMMITTED_FILE = "committed.json"
"""The drain's committed offsets."""

DAMAGED_FOLDER = "damaged"
"""Where a sealed segment with unreadable bytes after its last record is set aside."""

DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024
"""A writer starts a new segment once its current one is this large."""

DEFAULT_SEGMENT_SECONDS = 60.0
"""...or this old (and not empty), so that drained segments can be deleted."""

DEFAULT_BATCH_RECORDS = 20_000
"""Records one drain reads at most."""

READ_BYTES = 32 * 1024 * 1024
"""Bytes read from one segment at a time (a frame is far smaller: the receiver caps bodies)."""

ABANDONED_SECONDS = 60.0
"""A hidden file of a writer is left alone this long (it is locked right after it is made)."""

LOCK_TIMEOUT_SECONDS = 60.0
"""How long a drain waits for another to finish."""


class SpoolError(RuntimeError):
    """The spool cannot be read or written (names the folder, never a record's content)."""


@dataclass(frozen=True)
class SpoolEntry:
    """One accepted delivery: when it came, its ids, and its body as received."""

    received_ms: int
    body: bytes = field(repr=False)
    delivery_id: str | None = None
    webhook_id: str | None = None


@dataclass(frozen=True)
class PendingBatch:
    """Records past the committed offsets, and the offsets that committing them would set."""

    entries: list[SpoolEntry]
    ends: dict[str, int]
    """Per segment name, the end of the last record read."""


@dataclass
class Purged:
    """What a purge did with the sealed, committed segments."""

    deleted: list[str] = field(default_factory=list)
    set_aside: list[str] = field(default_factory=list)
    """Moved to ``damaged/``: they held bytes after their last readable record."""


def spool_folder(webhook_home: Path) -> Path:
    """The spool of the webhook folder ``webhook_home``."""
    return webhook_home / SPOOL_FOLDER


# -- frames ---------------------------------------------------------------------------------


def encode(entry: SpoolEntry) -> bytes:
    """The frame of ``entry``."""
    meta = orjson.dumps({"delivery": entry.delivery_id, "webhook": entry.webhook_id})
    payload = _PAYLOAD.pack(entry.received_ms, len(meta)) + meta + entry.body
    return _HEADER.pack(MAGIC, len(payload), zlib.crc32(payload)) + payload


def _decode_payload(payload: bytes) -> SpoolEntry:
    received_ms, meta_length = _PAYLOAD.unpack_from(payload)
    start = _PAYLOAD.size
    meta = orjson.loads(payload[start : start + meta_length])
    return SpoolEntry(
        received_ms, payload[start + meta_length :], meta.get("delivery"), meta.get("webhook")
    )


def decode_frames(data: bytes, limit: int) -> tuple[list[SpoolEntry], int]:
    """The whole, valid frames at the start of ``data`` (at most ``limit``) and where they end.

    Reading stops at the first frame that is cut short or fails its checksum.
    """
    entries: list[SpoolEntry] = []
    position = 0
    while len(entries) < limit and position + _HEADER.size <= len(data):
        magic, length, checksum = _HEADER.unpack_from(data, position)
        start, end = position + _HEADER.size, position + _HEADER.size + length
        if magic != MAGIC or end > len(data) or length < _PAYLOAD.size:
            break
        payload = data[start:end]
        if zlib.crc32(payload) != checksum:
            break
        entries.append(_decode_payload(payload))
        position = end
    return entries, position


# -- files ----------------------------------------------------------------------------------


def _fsync_folder(folder: Path) -> None:
    """Make the folder's entries (a new or renamed file) durable."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _held_by_writer(path: Path) -> bool:
    """Whether a writer still holds ``path`` (so more records may come)."""
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(descriptor)  # closing releases a lock taken
    return False


class SpoolWriter:
    """Appends records durably to its own segment of a spool folder (one per process)."""

    def __init__(
        self,
        folder: Path,
        segment_bytes: int = DEFAULT_SEGMENT_BYTES,
        segment_seconds: float = DEFAULT_SEGMENT_SECONDS,
    ) -> None:
        self.folder = folder
        self._segment_bytes = segment_bytes
        self._segment_seconds = segment_seconds
        self._descriptor: int | None = None
        self._size = 0
        self._opened = 0.0
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)

    def __repr__(self) -> str:
        return f"SpoolWriter({self.folder.name!r})"

    def append(self, entries: Sequence[SpoolEntry]) -> None:
        """Write ``entries`` and ``fsync``: when this returns, they survive a crash."""
        if not entries:
            return
        descriptor = self._segment()
        data = b"".join(encode(entry) for entry in entries)
        written = 0
        while written < len(data):
            written += os.write(descriptor, data[written:])
        os.fsync(descriptor)
        self._size += len(data)

    def close(self) -> None:
        """Seal the current segment (release it to the drain)."""
        if self._descriptor is not None:
            os.close(self._descriptor)
            self._descriptor = None

    def _segment(self) -> int:
        """The descriptor to append to, a new segment when the current one is full or old."""
        stale = time.monotonic() - self._opened >= self._segment_seconds and self._size > 0
        if self._descriptor is None or self._size >= self._segment_bytes or stale:
            fresh = self._create()
            self.close()
            self._descriptor, self._size, self._opened = fresh, 0, time.monotonic()
        return self._descriptor

    def _create(self) -> int:
        """A new segment: created hidden, locked, then renamed into view and made durable."""
        descriptor, hidden = tempfile.mkstemp(prefix=".new-", dir=self.folder)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            name = f"{time.time_ns():020d}-{os.getpid()}{SEGMENT_SUFFIX}"
            os.rename(hidden, self.folder / name)
            _fsync_folder(self.folder)
        except BaseException:
            os.close(descriptor)
            raise
        return descriptor


class Spool:
    """The drain's side of a spool folder: what is pending, commit, and clean-up."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def __repr__(self) -> str:
        return f"Spool({self.folder.name!r})"

    def segments(self) -> list[str]:
        """Segment names, oldest first (hidden files being created are not segments)."""
        if not self.folder.is_dir():
            return []
        return sorted(
            entry.name
            for entry in os.scandir(self.folder)
            if entry.name.endswith(SEGMENT_SUFFIX) and not entry.name.startswith(".")
        )

    def committed(self) -> dict[str, int]:
        """The committed offset of each segment (absent: nothing of it committed)."""
        try:
            stored = orjson.loads(self._offsets_path().read_bytes())
            return {str(name): int(end) for name, end in stored.items()}
        except FileNotFoundError:
            return {}
        except (orjson.JSONDecodeError, AttributeError, ValueError, TypeError) as exc:
            raise SpoolError(f"the spool's {COMMITTED_FILE} is unreadable") from exc

    def pending(self, limit: int = DEFAULT_BATCH_RECORDS) -> PendingBatch:
        """Up to ``limit`` records past the committed offsets, oldest segment first."""
        committed = self.committed()
        entries: list[SpoolEntry] = []
        ends: dict[str, int] = {}
        for name in self.segments():
            if len(entries) >= limit:
                break
            offset = committed.get(name, 0)
            try:
                data = _read_from(self.folder / name, offset, READ_BYTES)
            except FileNotFoundError:
                continue
            found, used = decode_frames(data, limit - len(entries))
            if found:
                entries.extend(found)
                ends[name] = offset + used
        return PendingBatch(entries, ends)

    def pending_bytes(self) -> int:
        """Bytes of segments past their committed offsets (0: nothing to drain)."""
        committed = self.committed()
        total = 0
        for name in self.segments():
            try:
                size = (self.folder / name).stat().st_size
            except FileNotFoundError:
                continue
            total += max(0, size - committed.get(name, 0))
        return total

    def commit(self, ends: dict[str, int]) -> None:
        """Record ``ends`` as committed (call only once the warehouse holds those records)."""
        if not ends:
            return
        offsets = self.committed()
        for name, end in ends.items():
            offsets[name] = max(end, offsets.get(name, 0))
        self._write_offsets(offsets)

    def purge(self) -> Purged:
        """Delete the sealed segments whose records are all committed.

        A sealed segment with bytes after its last readable record (a record cut short by a
        writer killed mid-write, never acknowledged; or damage) is moved to ``damaged/``
        instead, once its readable records are committed: nothing is deleted unread.
        """
        offsets = self.committed()
        present = set(self.segments())
        purged = Purged()
        for name in sorted(present):
            path = self.folder / name
            if _held_by_writer(path):
                continue
            size = path.stat().st_size
            offset = offsets.get(name, 0)
            if offset < size and decode_frames(_read_from(path, offset), 1)[0]:
                continue  # records not committed yet
            if offset < size:
                damaged = self.folder / DAMAGED_FOLDER
                damaged.mkdir(exist_ok=True, mode=0o700)
                os.rename(path, damaged / name)
                purged.set_aside.append(name)
            else:
                path.unlink()
                purged.deleted.append(name)
        gone = set(purged.deleted) | set(purged.set_aside)
        remaining = {k: v for k, v in offsets.items() if k in present and k not in gone}
        if remaining != offsets:
            self._write_offsets(remaining)
        self._remove_abandoned_hidden_files()
        return purged

    def _remove_abandoned_hidden_files(self) -> None:
        """Hidden files of a writer killed while creating a segment (empty, never used).

        Only old ones: a writer creates its file first and locks it a moment later, so a
        young unlocked one may be a segment about to be born.
        """
        old_enough = time.time() - ABANDONED_SECONDS
        for entry in os.scandir(self.folder):
            if not entry.name.startswith(".new-"):
                continue
            path = Path(entry.path)
            try:
                if entry.stat().st_mtime < old_enough and not _held_by_writer(path):
                    path.unlink(missing_ok=True)
            except FileNotFoundError:
                continue

    @contextmanager
    def drain_lock(self, timeout: float = LOCK_TIMEOUT_SECONDS) -> Iterator[None]:
        """Hold the spool's drain lock: one drain at a time reads, loads and commits."""
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        deadline = time.monotonic() + timeout
        with (self.folder / ".drain.lock").open("a") as handle:
            while True:
                try:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise SpoolError(
                            f"another drain held the spool for {timeout:.0f} s"
                        ) from None
                    time.sleep(0.02)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def _offsets_path(self) -> Path:
        return self.folder / COMMITTED_FILE

    def _write_offsets(self, offsets: dict[str, int]) -> None:
        """Replace the offsets file atomically and durably."""
        target = self._offsets_path()
        temporary = target.with_name(f".{COMMITTED_FILE}.new")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(descriptor, orjson.dumps(dict(sorted(offsets.items()))))
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        os.replace(temporary, target)
        _fsync_folder(self.folder)


def _read_from(path: Path, offset: int, size: int = -1) -> bytes:
    """Up to ``size`` bytes of ``path`` from ``offset`` (-1: to the end)."""
    with path.open("rb") as handle:
        handle.seek(offset)
        return handle.read(size)
