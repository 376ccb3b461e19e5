"""Getting every event of a time window out of the VIS API, and proving it is every event.

The API's listing is paged by page number, may cap the page size silently, reorders events
that share a ``startTime`` between requests, and does not say whether its date edges are
inclusive. So, per window ``[start, end)``:

1. query ``[start - margin, end + margin]`` and keep exactly ``start <= startTime < end``, which
   is right under any edge reading; the count over that same range is the authority;
2. learn once per client which page number comes first and which page size is honoured;
3. plan the pages from the count (splitting the range in halves while it needs too many pages)
   and fetch them concurrently, sorted by ``startTime``;
4. dedupe by id and check the distinct ids against the count; a range that falls short is
   repaired round by round: ties cut by a page boundary are read on their own, the rest is
   fetched again in halves, and a range too narrow to halve (one instant that may hold more
   events than a page) is read by every means the API offers (see ``_read_range``). Repairs are
   bounded in rounds and in requests; past either bound the window is declared incomplete,
   naming the instant it could not read.

Every range is handled as a closed-or-open interval ``(lo, hi)`` whose edges the server may read
either way: two halves ``(lo, mid + 1)`` and ``(mid, hi)`` always cover the server's reading of
``(lo, hi)`` and nothing outside it, so each piece can be checked against its own count.
"""

from __future__ import annotations

import itertools
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar, overload

import orjson

from vis_pipeline.client import Tally, VISClient
from vis_pipeline.errors import (
    VISBadRequest,
    VISIncompleteWindow,
    VISRetriesExhausted,
    VISTransportError,
)
from vis_pipeline.records import (
    DIRECTIONS,
    FINAL_STATES,
    RECORD_TYPES,
    STATES,
    InvalidInstant,
    RejectedRecord,
    event_problem,
    parse_instant_ms,
    to_epoch_ms,
)
from vis_pipeline.request_pool import BULK, URGENT, PriorityPool
from vis_pipeline.settings import DEFAULTS, Settings

LOGGER = logging.getLogger("vis_pipeline.client")

MIN_SPLIT_WIDTH_MS = 3
"""Narrowest range (ms) that can still be halved into two strictly narrower overlapping pieces."""

MAX_REPAIR_ROUNDS = 64
"""Rounds of repair a window may take: halving a range ends after log2 of its width (about 27
rounds for a day), so a window still short after this many is not converging."""

DEFAULT_REPAIR_BUDGET = 2_000
"""Requests a window's repairs may spend beyond its planned counts and pages."""

REPEAT_SPARE_PASSES = 10
"""Passes beyond log(count) when reading an instant again and again (see _read_repeatedly)."""

DIRECTIONS_TO_SPLIT = ("INBOUND", "OUTBOUND")
"""The filter the count also takes, so it can cut an instant into parts checked on their own."""

WINDOWS_IN_FLIGHT = 3
"""Windows extracted at once by iter_windows: two ahead of the caller, so while the caller works
on one window and the next is in its tail (last pages, its ``then``), the pool has work."""

FIRST_PAGE_OVERLAP = 0.5
"""Share of ids pages 0 and 1 must have in common to conclude the server clamps 0 to page 1."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_MS = timedelta(milliseconds=1)
_MIN_INSTANT_LENGTH = 10  # parse_instant_ms refuses shorter text before parsing
_OPTIONAL_TEXT = ("callerId", "externalId", "smsData")
_fromisoformat = datetime.fromisoformat
_T = TypeVar("_T")

Window = tuple[datetime, datetime]
"""A time window ``[start, end)`` of tz-aware datetimes."""

_Page = tuple[list[Any], list[int | None]]
"""A page's records, and the start instant (ms) of each one that is surely valid."""

_Ordering = tuple[str, str]
"""A listing's ``sort`` property and ``order``."""

BY_START_ASC: _Ordering = ("startTime", "ASC")
BY_START_DESC: _Ordering = ("startTime", "DESC")
BY_ID_ASC: _Ordering = ("id", "ASC")

_ID_SORT_STATES = {None: "sorted by id", True: "sorted by id", False: "sort=id refused"}
"""How an incomplete instant's message names the sort by id, by what was learned of it."""


@dataclass(frozen=True, slots=True)
class WindowStats:
    """What extracting one window cost and found."""

    api_count: int
    """The API's count over the margin range (the number checked against)."""
    window_count: int
    """What the API holds inside ``[start, end)``: api_count minus ids seen only in margins."""
    fetched: int
    """Records received, duplicates included."""
    distinct: int
    """Distinct records in the margin range."""
    pages: int
    """Pages received."""
    requests: int
    """HTTP requests sent, counts and retries included."""
    retries: int
    """Requests that were repeats of a failed one."""
    seconds: float
    """Wall time of the extraction."""
    sub_windows: int
    """Pieces the window was cut into beyond itself (0: fetched whole)."""
    repair_requests: int = 0
    """Requests spent repairing pieces that fell short of their count (within the budget)."""

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly copy."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class WindowResult:
    """Every event of one window, plus the records that are not valid events."""

    start: datetime
    end: datetime
    events: list[dict[str, Any]]
    rejected: list[RejectedRecord]
    stats: WindowStats


@dataclass(frozen=True, slots=True)
class WindowFailure:
    """A window that could not be read whole: the other windows of the same run go on."""

    start: datetime
    end: datetime
    error: VISIncompleteWindow


@dataclass(frozen=True, slots=True)
class PagingProfile:
    """How the server pages: its first page number and the page size it really honours."""

    first_page: int
    size: int


@dataclass(eq=False, slots=True)
class _Piece:
    """A range ``(lo, hi)`` (edges read as the server likes), its count and what it returned."""

    lo: int
    hi: int
    count: int
    size: int
    keys: set[Any] = field(default_factory=set)
    direction: str | None = None
    """The direction filter of a piece cut out of an instant by direction."""

    def page_count(self) -> int:
        """Pages the count needs at this piece's page size."""
        return math.ceil(self.count / self.size) if self.count > 0 else 0

    def complete(self) -> bool:
        """Whether the distinct records seen match the count."""
        return len(self.keys) == self.count

    def narrow(self) -> bool:
        """Too narrow to halve: the range holds one to three instants."""
        return self.hi - self.lo < MIN_SPLIT_WIDTH_MS

    def instant(self) -> datetime | None:
        """The instant a narrow range is about (its middle millisecond)."""
        if not self.narrow():
            return None
        return _EPOCH + timedelta(milliseconds=(self.lo + self.hi) // 2)


class _PieceIncomplete(Exception):
    """A piece that cannot be made to match its count (turned into VISIncompleteWindow)."""

    def __init__(
        self,
        piece: _Piece,
        why: str,
        *,
        instant: datetime | None = None,
        distinct: int | None = None,
    ) -> None:
        self.instant = instant
        seen = len(piece.keys) if distinct is None else distinct
        self.reason = (
            f"range fromDate={piece.lo} toDate={piece.hi}: the API counts {piece.count}, "
            f"{seen} distinct were read; {why}"
        )
        super().__init__(self.reason)


class _SortRefused(Exception):
    """The server refused a sort property (400)."""


class _Seen:
    """The distinct records read of one range so far, kept as pages of new records only."""

    def __init__(self, piece: _Piece) -> None:
        self.count = piece.count
        self.keys: set[Any] = set()
        self.pages: list[_Page] = []

    def add(self, pages: list[_Page], *, overlaps: bool = False) -> bool:
        """Keep the records not seen before; True when ``overlaps`` and a record came twice."""
        repeated = False
        for records, moments in pages:
            fresh: list[Any] = []
            fresh_moments: list[int | None] = []
            for record, moment in zip(records, moments, strict=True):
                key = record_key(record)
                if key in self.keys:
                    repeated = True
                    continue
                self.keys.add(key)
                fresh.append(record)
                fresh_moments.append(moment)
            if fresh:
                self.pages.append((fresh, fresh_moments))
        return overlaps and repeated

    def complete(self) -> bool:
        """Whether as many distinct records were read as the range's count."""
        return len(self.keys) >= self.count


@dataclass(slots=True)
class _Run:
    """State of one window's extraction."""

    window: Window
    start_ms: int
    end_ms: int
    order: int
    """Position of the window in the order extractions began: earlier ones are served first."""
    tally: Tally = field(default_factory=Tally)
    pool: dict[Any, tuple[Any, int | None]] = field(default_factory=dict)
    """Distinct records by key, each with its start instant when surely valid."""
    sub_windows: int = 0
    repairs_began: int | None = None
    """Requests sent when the first repair began (None: nothing needed repair)."""


def check_window(start: datetime, end: datetime) -> tuple[int, int]:
    """``(start_ms, end_ms)`` of a window; ValueError for naive datetimes or an empty window."""
    start_ms = to_epoch_ms(start, name="start")
    end_ms = to_epoch_ms(end, name="end")
    if end <= start:
        raise ValueError(f"end {end.isoformat()} must be after start {start.isoformat()}")
    return start_ms, end_ms


def record_key(record: Any) -> Any:
    """The identity of a record: its integer id, else its canonical JSON (so it still dedupes)."""
    if type(record) is dict:
        rid = record.get("id")
        if type(rid) is int:
            return rid
    return ("payload", orjson.dumps(record, option=orjson.OPT_SORT_KEYS))


def _start_ms(record: Any) -> int | None:
    """startTime in epoch ms, or None when the record has no readable one."""
    if type(record) is not dict:
        return None
    try:
        return parse_instant_ms(record.get("startTime"))
    except InvalidInstant:
        return None


def _valid_start_ms(record: Any) -> int | None:
    """startTime (ms) of a record that certainly passes ``event_problem``; None: not certain.

    The fast path of validation: the same checks on plain types, inline, because this runs
    once per record. Anything it is not sure of goes to ``event_problem``, which has the last
    word and gives the reason.
    """
    try:
        if not (
            type(record["id"]) is int
            and type(record["accountId"]) is int
            and type(record["userId"]) is int
            and type(record["uciId"]) is int
            and record["type"] in RECORD_TYPES
            and record["direction"] in DIRECTIONS
            and record["state"] in STATES
            and type(record["phoneNumber"]) is str
        ):
            return None
        start = record["startTime"]
        moment = _fromisoformat(start)
        get = record.get
        answer = get("answerTime")
        if answer is not None:
            _fromisoformat(answer)
            if len(answer) < _MIN_INSTANT_LENGTH:
                return None
        end = get("endTime")
        if end is not None:
            _fromisoformat(end)
            if len(end) < _MIN_INSTANT_LENGTH:
                return None
    except (KeyError, TypeError, ValueError):
        # Missing field, not a dict, unhashable enum value, unreadable instant: ask the slow path.
        return None
    duration = get("duration")
    if duration is not None and (type(duration) is not int or duration < 0):
        return None
    for name in _OPTIONAL_TEXT:
        text = get(name)
        if text is not None and type(text) is not str:
            return None
    if len(start) < _MIN_INSTANT_LENGTH or moment.tzinfo is None:
        return None  # parse_instant_ms refuses short text and reads naive text as UTC
    return (moment - _EPOCH) // _ONE_MS


def _problem(record: Any) -> str | None:
    """``event_problem``, also for records it cannot read at all (e.g. a list as a state)."""
    try:
        return event_problem(record)
    except Exception as exc:  # an unhashable enum value and the like: still just invalid
        return f"unreadable record: {type(exc).__name__}: {exc}"


def _fresher(new: Any, old: Any) -> bool:
    """Whether ``new`` should replace ``old`` for the same id: a final state beats a live one."""
    return (
        type(new) is dict
        and type(old) is dict
        and new.get("state") in FINAL_STATES
        and old.get("state") not in FINAL_STATES
    )


def _first_page(page0: list[Any] | None, page1: list[Any] | None, count: int) -> int:
    """The first page number, judged from what offsets 0 and 1 returned."""
    if page0 is None or (not page0 and count > 0):
        return 1
    if not page1:
        return 0
    ids0 = {record_key(r) for r in page0}
    ids1 = {record_key(r) for r in page1}
    shared = len(ids0 & ids1)
    return 1 if shared > FIRST_PAGE_OVERLAP * min(len(ids0), len(ids1)) else 0


def _straddling_ties(pages: list[list[Any]]) -> list[int]:
    """Instants whose events are cut by a page boundary (and so may be reordered across it)."""
    found: list[int] = []
    for before, after in itertools.pairwise(pages):
        if before and after:
            moment = _start_ms(before[-1])
            if moment is not None and moment == _start_ms(after[0]):
                found.append(moment)
    return sorted(set(found))


@dataclass(frozen=True)
class ExtractOptions:
    """How windows are extracted: page size, parallelism, splitting, edges and repairs."""

    page_size: int = DEFAULTS.page_size
    concurrency: int = DEFAULTS.concurrency
    max_pages_per_window: int = DEFAULTS.max_pages_per_window
    edge_margin_ms: int = DEFAULTS.edge_margin_ms
    repair_budget: int = DEFAULTS.repair_budget

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if type(value) is not int or value < 1:
                raise ValueError(f"{name} must be a whole number >= 1, got {value!r}")

    @classmethod
    def from_settings(cls, settings: Settings) -> ExtractOptions:
        """The extraction the project's settings describe."""
        return cls(
            page_size=settings.page_size,
            concurrency=settings.concurrency,
            max_pages_per_window=settings.max_pages_per_window,
            edge_margin_ms=settings.edge_margin_ms,
            repair_budget=settings.repair_budget,
        )


class WindowExtractor:
    """Extracts windows of events through a :class:`VISClient`, with a bounded thread pool.

    Every HTTP request of an extraction runs on the pool, so at most ``concurrency`` are in
    flight, whatever the number of windows being worked on. Use it as a context manager, or
    call :meth:`close`; the client stays the caller's to close.
    """

    def __init__(self, client: VISClient, options: ExtractOptions | None = None) -> None:
        self._client = client
        self._options = options = options or ExtractOptions()
        self._page_size = options.page_size
        self._max_pages = options.max_pages_per_window
        self._margin = options.edge_margin_ms
        self._repair_budget = options.repair_budget
        self._profile: PagingProfile | None = None
        self._id_sort: bool | None = None
        """Whether the server pages stably by id (None: not learned yet)."""
        self._profile_lock = threading.Lock()
        self._pool_lock = threading.Lock()
        self._pool: PriorityPool | None = None
        self._window_order = itertools.count()
        self._closed = False

    def __enter__(self) -> WindowExtractor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def client(self) -> VISClient:
        """The client every request goes through."""
        return self._client

    @property
    def options(self) -> ExtractOptions:
        """How this extractor works."""
        return self._options

    # -- lifecycle -------------------------------------------------------------------------

    def _executor(self) -> PriorityPool:
        """The shared request pool, started on first use."""
        with self._pool_lock:
            if self._closed:
                raise RuntimeError("the extractor is closed")
            if self._pool is None:
                self._pool = PriorityPool(self._options.concurrency, "vis-request")
            return self._pool

    def close(self) -> None:
        """Stop the thread pool (waiting for requests in flight)."""
        with self._pool_lock:
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown()

    @property
    def profile(self) -> PagingProfile | None:
        """The paging profile learned so far (None before the first non-empty window)."""
        return self._profile

    # -- public operations -----------------------------------------------------------------

    def margin_range(self, start_ms: int, end_ms: int) -> tuple[int, int]:
        """The query range that holds ``[start_ms, end_ms)`` under any edge reading."""
        return start_ms - self._margin, end_ms + self._margin

    def count_window(self, start: datetime, end: datetime) -> int:
        """The API's count over the window's margin range (what an extraction checks against)."""
        lo, hi = self.margin_range(*check_window(start, end))
        return self._count(lo, hi)

    def count_windows(self, windows: Iterable[Window]) -> list[int]:
        """``count_window`` of each window, asked concurrently on the request pool."""
        ranges = [self.margin_range(*check_window(start, end)) for start, end in windows]
        pool = self._executor()
        futures = [
            pool.submit(
                (URGENT, next(self._window_order)),
                lambda lo=lo, hi=hi: self._count(lo, hi),
            )
            for lo, hi in ranges
        ]
        return [future.result() for future in futures]

    def extract(
        self, start: datetime, end: datetime, placed: _Placed | None = None
    ) -> WindowResult:
        """Every event of ``[start, end)``, checked against the API's count."""
        start_ms, end_ms = check_window(start, end)
        began = time.perf_counter()
        run = _Run((start, end), start_ms, end_ms, next(self._window_order))
        lo, hi = self.margin_range(start_ms, end_ms)
        try:
            api_count = self._fill(run, lo, hi)
        except VISRetriesExhausted as exc:
            if exc.window is not None:
                raise
            raise exc.located(run.window) from exc
        return self._result(run, api_count, placed or _Placed(), time.perf_counter() - began)

    @overload
    def iter_windows(self, windows: Iterable[Window]) -> Iterator[WindowResult | WindowFailure]: ...

    @overload
    def iter_windows(
        self, windows: Iterable[Window], then: Callable[[WindowResult], _T]
    ) -> Iterator[_T | WindowFailure]: ...

    def iter_windows(
        self, windows: Iterable[Window], then: Callable[[WindowResult], Any] | None = None
    ) -> Iterator[Any]:
        """Each window's result in order, extracting the next one while the caller works.

        At most WINDOWS_IN_FLIGHT windows are being extracted at once, so the pool stays busy
        across window boundaries while memory stays bounded by a few windows, not the range.
        ``then``, when given, runs on the window's own thread as soon as the window is complete,
        and its return value is yielded instead: work the caller would otherwise do in turn.
        A window that cannot be read whole is yielded as a :class:`WindowFailure` (``then`` is
        not called for it); every other error ends the iteration.
        """
        placed = _Placed()
        ahead = ThreadPoolExecutor(WINDOWS_IN_FLIGHT, thread_name_prefix="vis-window")
        pending: deque[Future[Any]] = deque()
        try:
            for start, end in windows:
                check_window(start, end)
                pending.append(ahead.submit(self._extract_then, start, end, placed, then))
                if len(pending) == WINDOWS_IN_FLIGHT:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            ahead.shutdown(wait=True, cancel_futures=True)

    def _extract_then(
        self,
        start: datetime,
        end: datetime,
        placed: _Placed,
        then: Callable[[WindowResult], Any] | None,
    ) -> Any:
        try:
            result = self.extract(start, end, placed)
        except VISIncompleteWindow as exc:
            # This window's data cannot be read whole; the API itself still answers, so the
            # run goes on with the next windows and the caller records this one as failed.
            return WindowFailure(start, end, exc)
        return result if then is None else then(result)

    def iter_events(
        self, start: datetime, end: datetime, window: timedelta = timedelta(days=1)
    ) -> Iterator[dict[str, Any]]:
        """Every valid event of ``[start, end)``, window by window (arguments checked at once)."""
        check_window(start, end)
        if window <= timedelta(0):
            raise ValueError(f"window must be positive, got {window}")
        return self._events(self.iter_windows(_split(start, end, window)))

    # -- the algorithm ---------------------------------------------------------------------

    def _fill(self, run: _Run, lo: int, hi: int) -> int:
        """Fetch the margin range into ``run.pool``; returns the count it was checked against."""
        api_count = self._on_pool(run, URGENT, lambda: self._count(lo, hi, run.tally)).result()
        if api_count == 0:
            return 0
        self._learn_profile(run, lo, hi, api_count)
        try:
            self._complete(run, self._plan(run, lo, hi, api_count))
        except _PieceIncomplete as exc:
            raise VISIncompleteWindow(
                run.window, api_count, len(run.pool), exc.reason, instant=exc.instant
            ) from None
        if len(run.pool) == api_count:
            return api_count
        # Every piece matched its own count, so the data moved under us: ask again once.
        recount = self._on_pool(run, URGENT, lambda: self._count(lo, hi, run.tally)).result()
        if recount != len(run.pool):
            raise VISIncompleteWindow(run.window, recount, len(run.pool), "the count kept moving")
        return recount

    def _on_pool(self, run: _Run, lane: int, call: Callable[[], _T]) -> Future[_T]:
        """Run one request of ``run`` on the shared pool, in ``lane``."""
        return self._executor().submit((lane, run.order), call)

    def _learn_profile(self, run: _Run, lo: int, hi: int, count: int) -> None:
        """Learn the first page number and the honoured page size once per client."""
        with self._profile_lock:
            if self._profile is not None:
                return
            size = self._page_size
            futures = [
                self._on_pool(
                    run,
                    URGENT,
                    lambda page=page: self._probe(lo, hi, page, size, run.tally),
                )
                for page in (0, 1)
            ]
            page0, page1 = (future.result() for future in futures)
            first = _first_page(page0, page1, count)
            head = page1 if first == 1 else page0
            honoured = size
            if head and len(head) < min(count, size):
                honoured = len(head)
            self._profile = PagingProfile(first, honoured)
            LOGGER.info("paging profile: first page %d, page size %d", first, honoured)

    def _lower_size(self, size: int) -> int:
        """Record a smaller honoured page size seen late; returns the size now in force."""
        with self._profile_lock:
            current = self._profile or PagingProfile(0, self._page_size)
            if 0 < size < current.size:
                LOGGER.info("page size cap learned late: %d (was %d)", size, current.size)
                current = PagingProfile(current.first_page, size)
                self._profile = current
            return current.size

    def _current(self) -> PagingProfile:
        """The profile in force (the asked page size from page 0 until one is learned)."""
        return self._profile or PagingProfile(0, self._page_size)

    def _count_all(
        self, run: _Run, ranges: list[tuple[int, int]], direction: str | None = None
    ) -> list[int]:
        """The API's count of each range, asked concurrently."""
        futures = [
            self._on_pool(
                run,
                URGENT,
                lambda lo=lo, hi=hi: self._count(lo, hi, run.tally, direction),
            )
            for lo, hi in ranges
        ]
        return [future.result() for future in futures]

    def _plan(self, run: _Run, lo: int, hi: int, count: int) -> list[_Piece]:
        """Pieces covering ``(lo, hi)``, each needing at most ``max_pages_per_window`` pages.

        Halved level by level (each level's counts asked together); a piece narrower than
        MIN_SPLIT_WIDTH_MS is kept whatever its count, so the loop ends after at most
        log2(hi - lo) levels.
        """
        size = self._current().size
        planned: list[_Piece] = []
        level = [_Piece(lo, hi, count, size)]
        while level:
            wide = []
            for piece in level:
                if piece.page_count() <= self._max_pages or piece.narrow():
                    planned.append(piece)
                else:
                    wide.append(piece)
            level = self._halved(run, wide)
        return sorted(planned, key=lambda piece: (piece.lo, piece.hi))

    def _halved(self, run: _Run, pieces: list[_Piece]) -> list[_Piece]:
        """Both halves of each piece, with their counts (asked together)."""
        ranges = [half for piece in pieces for half in _halves(piece.lo, piece.hi)]
        if not ranges:
            return []
        counts = self._count_all(run, ranges)
        run.sub_windows += len(ranges)
        size = self._current().size
        return [_Piece(lo, hi, count, size) for (lo, hi), count in zip(ranges, counts, strict=True)]

    def _fetch(self, run: _Run, pieces: list[_Piece]) -> list[list[_Page]]:
        """All pages of all ``pieces``, fetched concurrently, in page order per piece."""
        first = self._current().first_page
        return self._fetch_pages(
            run,
            [
                (piece, page, BY_START_ASC)
                for piece in pieces
                for page in range(first, first + piece.page_count())
            ],
            len(pieces),
            [index for index, piece in enumerate(pieces) for _ in range(piece.page_count())],
        )

    def _fetch_pages(
        self,
        run: _Run,
        requests: list[tuple[_Piece, int, _Ordering]],
        groups: int,
        group_of: list[int],
    ) -> list[list[_Page]]:
        """The pages asked for (piece, page number, order), grouped, fetched concurrently."""
        jobs: list[tuple[int, int, Future[_Page]]] = []
        for group, (piece, page, order) in zip(group_of, requests, strict=True):
            future = self._on_pool(
                run,
                BULK,
                lambda piece=piece, page=page, order=order: self._page(run, piece, page, order),
            )
            jobs.append((group, page, future))
        fetched: list[list[_Page]] = [[] for _ in range(groups)]
        for position, (group, page, future) in enumerate(jobs):
            try:
                fetched[group].append(future.result())
            except VISRetriesExhausted as exc:
                _cancel(jobs[position + 1 :])
                raise exc.located(run.window, page) from exc
            except BaseException:
                _cancel(jobs[position + 1 :])
                raise
        return fetched

    def _page(
        self, run: _Run, piece: _Piece, page: int, ordering: _Ordering = BY_START_ASC
    ) -> _Page:
        """One page and the start instant of each record that is surely valid (None: unsure).

        Validating here, on the worker that parsed the page, keeps the work in short slices
        between requests instead of one long stretch that would hold up every worker.
        """
        sort, order = ordering
        try:
            records = self._client.list_events(
                from_date=piece.lo,
                to_date=piece.hi,
                direction=piece.direction,
                offset=page,
                size=piece.size,
                order=order,
                sort=sort,
                tally=run.tally,
            )
        except VISBadRequest:
            if sort == BY_START_ASC[0]:
                raise
            raise _SortRefused(sort) from None
        return records, [_valid_start_ms(record) for record in records]

    def _count(
        self, lo: int, hi: int, tally: Tally | None = None, direction: str | None = None
    ) -> int:
        """getEventsCount over ``(lo, hi)`` as an int (edges read as the server does)."""
        body = self._client.get_events_count(
            from_date=lo, to_date=hi, direction=direction, tally=tally
        )
        count = body.get("count") if type(body) is dict else None
        if type(count) is not int or count < 0:
            raise VISTransportError(f"getEventsCount: answer without a usable count: {count!r}")
        return count

    def _probe(self, lo: int, hi: int, page: int, size: int, tally: Tally) -> list[Any] | None:
        """A page asked only to learn how the server pages; None when the server refuses it."""
        try:
            return self._client.list_events(
                from_date=lo,
                to_date=hi,
                offset=page,
                size=size,
                order="ASC",
                sort="startTime",
                tally=tally,
            )
        except VISBadRequest:
            return None

    def _absorb(
        self, run: _Run, piece: _Piece, pages: list[_Page], only_ms: int | None = None
    ) -> None:
        """Add the records of ``pages`` to the piece's keys and the window's pool (deduped)."""
        pool = run.pool
        keys = piece.keys
        for records, moments in pages:
            for record, moment in zip(records, moments, strict=True):
                if only_ms is not None and (moment or _start_ms(record)) != only_ms:
                    continue
                rid = record.get("id") if type(record) is dict else None
                key = rid if type(rid) is int else record_key(record)
                keys.add(key)
                known = pool.get(key)
                if known is None or _fresher(record, known[0]):
                    pool[key] = (record, moment)

    # -- repairs: bounded in rounds and in requests ----------------------------------------

    def _complete(self, run: _Run, pieces: list[_Piece]) -> None:
        """Fetch ``pieces`` and repair each that falls short of its count, round by round.

        A round fetches, then repairs what fell short; a repair either settles its piece on
        the spot or hands back narrower pieces for the next round. Rounds are bounded (halving
        a range ends after log2 of its width) and so are the requests every repair may spend.
        """
        for _ in range(MAX_REPAIR_ROUNDS):
            if not pieces:
                return
            fetched = self._fetch(run, pieces)
            for piece, pages in zip(pieces, fetched, strict=True):
                self._absorb(run, piece, pages)
            short = [
                (piece, pages)
                for piece, pages in zip(pieces, fetched, strict=True)
                if not piece.complete()
            ]
            if short and run.repairs_began is None:
                run.repairs_began = run.tally.requests
            pieces = [part for piece, pages in short for part in self._repair(run, piece, pages)]
        if pieces:
            raise _PieceIncomplete(
                pieces[0], f"still short after {MAX_REPAIR_ROUNDS} rounds of repair"
            )

    def _repair(self, run: _Run, piece: _Piece, pages: list[_Page]) -> list[_Piece]:
        """Make a piece that fell short whole, cheapest remedy first; pieces left to fetch."""
        LOGGER.debug(
            "range (%d, %d): count %d, %d distinct; repairing",
            piece.lo,
            piece.hi,
            piece.count,
            len(piece.keys),
        )
        self._spend(run, piece)
        short = [len(page) for page, _ in pages[:-1] if 0 < len(page) < piece.size]
        if short and self._lower_size(max(short)) < piece.size:
            # The server caps pages lower than it first did: plan the piece again at that size.
            (count,) = self._count_all(run, [(piece.lo, piece.hi)])
            return self._plan(run, piece.lo, piece.hi, count)
        for moment in _straddling_ties([records for records, _ in pages]):
            # An instant cut by a page boundary may have been reordered across it.
            self._read_instant(run, piece, moment)
        if piece.complete():
            return []
        if piece.narrow():
            self._read_narrow(run, piece)
            return []
        return self._halved(run, [piece])

    def _spend(self, run: _Run, piece: _Piece) -> None:
        """Refuse to go on once the window's repairs have spent their request budget."""
        began = run.tally.requests if run.repairs_began is None else run.repairs_began
        spent = run.tally.requests - began
        if spent >= self._repair_budget:
            raise _PieceIncomplete(
                piece,
                f"the repair budget of {self._repair_budget} requests is spent",
                instant=piece.instant(),
            )

    def _read_instant(self, run: _Run, piece: _Piece, moment: int) -> None:
        """Read one instant whole and add its events (only its own) to ``piece``."""
        lo, hi = moment - 1, moment + 1
        (count,) = self._count_all(run, [(lo, hi)])
        tie = _Piece(lo, hi, count, self._current().size)
        self._absorb(run, piece, self._read_range(run, tie), only_ms=moment)

    def _read_narrow(self, run: _Run, piece: _Piece) -> None:
        """Read a range of one to three instants whole, with a fresh count."""
        (piece.count,) = self._count_all(run, [(piece.lo, piece.hi)])
        piece.keys.clear()
        self._absorb(run, piece, self._read_range(run, piece))

    def _read_range(self, run: _Run, piece: _Piece) -> list[_Page]:
        """Pages holding every record of a narrow range (its count says how many).

        Each way the API offers is tried, cheapest and surest first: one page when the range
        fits in one; a sort on the unique id (learned once per client); cutting the range by
        direction (the count checks each part); then reading the pages again, ascending and
        descending in turn, until the distinct ids reach the count. Raises _PieceIncomplete,
        naming the instant, when none of them gets there within the budget.
        """
        seen = _Seen(piece)
        if piece.count <= piece.size:
            seen.add(self._fetch(run, [piece])[0])
            if seen.complete():
                return seen.pages
        if self._id_sort is not False:
            self._read_by_id(run, piece, seen)
            if seen.complete():
                return seen.pages
        for part in self._by_direction(run, piece):
            part_seen = _Seen(part)
            self._read_repeatedly(run, part, part_seen)
            seen.add(part_seen.pages)
        if not seen.complete():
            self._read_repeatedly(run, piece, seen)
        if not seen.complete():
            raise _PieceIncomplete(
                piece,
                f"no way the API offers read it whole at page size {piece.size} "
                f"({_ID_SORT_STATES[self._id_sort]}, by direction, again and again)",
                instant=piece.instant(),
                distinct=len(seen.keys),
            )
        return seen.pages

    def _read_by_id(self, run: _Run, piece: _Piece, seen: _Seen) -> None:
        """Read the range sorted by id, a unique key: stable pages, whatever the ties."""
        first = self._current().first_page
        requests = [(piece, page, BY_ID_ASC) for page in range(first, first + piece.page_count())]
        try:
            (pages,) = self._fetch_pages(run, requests, 1, [0] * len(requests))
        except _SortRefused:
            self._learn_id_sort(False, "refuses sort=id")
            return
        overlapping = seen.add(pages, overlaps=True)
        if seen.complete():
            self._learn_id_sort(True, "sorts by id")
        elif overlapping:
            self._learn_id_sort(False, "does not page stably by id")

    def _learn_id_sort(self, works: bool, what: str) -> None:
        """Remember, once per client, whether the server pages stably by id."""
        with self._profile_lock:
            if self._id_sort is None:
                self._id_sort = works
                LOGGER.info(
                    "the server %s: instants larger than a page are read that way%s",
                    what,
                    "" if works else " no more",
                )

    def _by_direction(self, run: _Run, piece: _Piece) -> list[_Piece]:
        """The range cut by direction, when the two parts' counts add up to the whole."""
        ranges = [(piece.lo, piece.hi)]
        parts = [
            _Piece(piece.lo, piece.hi, count, piece.size, direction=direction)
            for direction in DIRECTIONS_TO_SPLIT
            for count in self._count_all(run, ranges, direction=direction)
        ]
        if sum(part.count for part in parts) != piece.count:
            return []  # the filter is ignored, or some records have no usable direction
        return [part for part in parts if part.count > 0]

    def _read_repeatedly(self, run: _Run, piece: _Piece, seen: _Seen) -> None:
        """Read every page of ``piece`` again and again until ``seen`` reaches its count.

        A server with unstable ties hands out a different selection of a tied instant on each
        request; reading all pages, ascending then descending, gathers each event with
        probability about 1 - 1/e a pass, so log(count) + REPEAT_SPARE_PASSES passes miss one
        with odds of about e**-REPEAT_SPARE_PASSES. The window's repair budget bounds it too.
        """
        first = self._current().first_page
        passes = math.ceil(math.log(max(piece.count, 2))) + REPEAT_SPARE_PASSES
        for index in range(passes):
            if seen.complete():
                return
            self._spend(run, piece)
            order = BY_START_ASC if index % 2 == 0 else BY_START_DESC
            requests = [(piece, page, order) for page in range(first, first + piece.page_count())]
            (pages,) = self._fetch_pages(run, requests, 1, [0] * len(requests))
            seen.add(pages)

    # -- results ---------------------------------------------------------------------------

    def _result(self, run: _Run, api_count: int, placed: _Placed, seconds: float) -> WindowResult:
        """Sort the pool into the window's events and rejected records, with the figures."""
        events: list[dict[str, Any]] = []
        moments: list[int] = []
        rejected: list[RejectedRecord] = []
        outside = 0
        start_ms, end_ms = run.start_ms, run.end_ms
        for key, (record, moment) in run.pool.items():
            if moment is None:
                problem = _problem(record)
                if problem is None:
                    moment = parse_instant_ms(record["startTime"])
            else:
                problem = None
            if problem is None:
                if start_ms <= moment < end_ms:
                    events.append(record)
                    moments.append(moment)
                else:
                    outside += 1
                continue
            moment = _start_ms(record)
            if moment is None:
                # No instant to place it by: it belongs to the first window that fetched it.
                if not placed.claim(key):
                    outside += 1
                    continue
            elif not start_ms <= moment < end_ms:
                outside += 1
                continue
            rid = key if type(key) is int else None
            rejected.append(RejectedRecord(problem, record, rid))
        events = _by_start(events, moments)
        tally = run.tally
        stats = WindowStats(
            api_count=api_count,
            window_count=api_count - outside,
            fetched=tally.fetched,
            distinct=len(run.pool),
            pages=tally.pages,
            requests=tally.requests,
            retries=tally.retries,
            seconds=round(seconds, 6),
            sub_windows=run.sub_windows,
            repair_requests=0 if run.repairs_began is None else tally.requests - run.repairs_began,
        )
        if rejected:
            LOGGER.warning(
                "window [%s, %s): %d record(s) rejected",
                run.window[0].isoformat(),
                run.window[1].isoformat(),
                len(rejected),
            )
        return WindowResult(run.window[0], run.window[1], events, rejected, stats)

    def _events(self, results: Iterator[WindowResult | WindowFailure]) -> Iterator[dict[str, Any]]:
        """The events of each result in turn; a window that failed raises its error."""
        for result in results:
            if isinstance(result, WindowFailure):
                raise result.error
            yield from result.events


class _Placed:
    """Keys of records without a readable startTime already assigned to a window."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keys: set[Any] = set()

    def claim(self, key: Any) -> bool:
        """True the first time ``key`` is claimed."""
        with self._lock:
            if key in self._keys:
                return False
            self._keys.add(key)
            return True


def _by_start(events: list[dict[str, Any]], moments: list[int]) -> list[dict[str, Any]]:
    """``events`` sorted by start instant (stable); pages usually deliver them sorted already."""
    if all(a <= b for a, b in itertools.pairwise(moments)):
        return events
    order = sorted(range(len(events)), key=moments.__getitem__)
    return [events[index] for index in order]


def _cancel(jobs: Iterable[tuple[Any, Any, Future[Any]]]) -> None:
    """Cancel the futures of jobs not yet started."""
    for _, _, future in jobs:
        future.cancel()


def _halves(lo: int, hi: int) -> list[tuple[int, int]]:
    """Two strictly narrower ranges that together cover ``(lo, hi)`` under any edge reading."""
    mid = (lo + hi) // 2
    return [(lo, mid + 1), (mid, hi)]


def _split(start: datetime, end: datetime, window: timedelta) -> Iterator[Window]:
    """``[start, end)`` cut into consecutive windows of ``window`` (the last one shorter)."""
    cursor = start
    while cursor < end:
        upper = min(cursor + window, end)
        yield cursor, upper
        cursor = upper
