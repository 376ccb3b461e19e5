"""The HTML report page: self-contained, escaped, figures right, and it renders in Chromium.

The browser test drives headless Chromium over the DevTools protocol: it loads the page from a
file, collects console messages, exceptions and network requests, reads facts from the DOM and
saves a full-page screenshot under the test's temporary folder (``artifacts/``).
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest
from helpers import FIRST, HOSTILE_CALLER, LAST, OPTIONS, TZ, Built, build_warehouse

from vis_pipeline import warehouse as wh
from vis_pipeline.dashboard.data import load_dashboard_data
from vis_pipeline.dashboard.page import render_dashboard_html
from vis_pipeline.dashboard.svg import nice_ticks
from vis_pipeline.dashboard.tables import MAX_TABLE_ROWS
from vis_pipeline.dashboard.text import fmt_duration, fmt_int, fmt_range, fmt_rate
from vis_pipeline.exports import DASHBOARD, export_report
from vis_pipeline.reports import materialize_reports, read_report
from vis_pipeline.simulator.process import SimulatorProcess

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)
BROWSER_TIMEOUT = 30.0
PAGE_WIDTH = 1280


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    path = tmp_path_factory.mktemp("page") / "warehouse.sqlite"
    with SimulatorProcess(OPTIONS) as sim:
        result = build_warehouse(sim, path, FIRST, LAST, TZ)
    with wh.connect(path) as conn:
        materialize_reports(conn, FIRST, LAST, TZ)
    return result


@pytest.fixture
def conn(built: Built) -> Iterator[duckdb.DuckDBPyConnection]:
    with wh.connect(built.path, read_only=True) as connection:
        yield connection


@pytest.fixture
def page_file(conn: duckdb.DuckDBPyConnection, tmp_path: Path) -> Path:
    return export_report(conn, DASHBOARD, FIRST, LAST, "html", tmp_path / "report.html", tz=TZ)


def _tile(page: str, label: str) -> str:
    found = re.search(
        rf'<div class="label">{re.escape(label)}</div><div class="value">([^<]*)</div>', page
    )
    assert found, f"no tile {label!r}"
    return found.group(1)


# ----------------------------------------------------------------------------------------------
# The page as text


def test_the_page_is_self_contained(page_file: Path) -> None:
    page = page_file.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    for outside in ("http:", "https:", "src=", "href=", "@import", "url(", "<link", "<script"):
        assert outside not in page.lower(), outside
    assert page.count('<svg class="chart"') == 3


def test_every_text_is_escaped(page_file: Path) -> None:
    page = page_file.read_text(encoding="utf-8")
    assert HOSTILE_CALLER not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;b&gt;Bold&lt;/b&gt;" in page


def test_tiles_show_the_truth(built: Built, page_file: Path) -> None:
    page = page_file.read_text(encoding="utf-8")
    inbound = [r for r in built.truth if r["direction"] == "INBOUND"]
    missed = [r for r in inbound if r["state"] == "MISSED"]
    assert _tile(page, "Calls") == f"{len(built.truth):,}"
    assert _tile(page, "Missed inbound") == f"{len(missed):,}"
    assert f"{len(inbound):,} in · {len(built.truth) - len(inbound):,} out" in page


def test_a_range_without_data_renders_empty_states(conn: duckdb.DuckDBPyConnection) -> None:
    empty = load_dashboard_data(conn, date(2025, 1, 6), date(2025, 1, 12))
    page = render_dashboard_html(empty, "Quiet week")
    assert "No calls in this range" in page
    assert "No inbound calls in this range" in page
    assert '<svg class="chart"' not in page


def test_the_unreturned_table_is_capped_newest_first(
    conn: duckdb.DuckDBPyConnection, page_file: Path
) -> None:
    unreturned = read_report(conn, "unreturned_missed_calls", FIRST, LAST)
    page = page_file.read_text(encoding="utf-8")
    section = page[page.index('class="card unreturned"') :]
    section = section[: section.index("</section>")]
    assert section.count("<tr>") == min(len(unreturned), MAX_TABLE_ROWS) + 1
    if len(unreturned) > MAX_TABLE_ROWS:
        assert f"Showing {MAX_TABLE_ROWS:,} of {len(unreturned):,} rows" in section
    newest = unreturned.sort_values("start_time").iloc[-1]
    assert f"{newest['local_start_time']:%d %b %H:%M}" in section.split("</tr>")[1]


@pytest.mark.parametrize(
    ("value", "text"),
    [(None, "–"), (5.4, "5s"), (59.6, "1m 00s"), (185, "3m 05s"), (7_620, "2h 07m")],
)
def test_durations_read_naturally(value: float | None, text: str) -> None:
    assert fmt_duration(value) == text


def test_long_durations_are_whole_hours() -> None:
    assert fmt_duration(400_000) == "111h"


def test_numbers_rates_and_ranges_read_naturally() -> None:
    assert fmt_int(1234567) == "1,234,567"
    assert fmt_rate(0.1234) == "12.3%"
    assert fmt_rate(float("nan")) == "–"
    assert fmt_range(date(2026, 3, 6), date(2026, 3, 9)) == "6–9 March 2026"
    assert fmt_range(date(2026, 2, 23), date(2026, 3, 22)) == "23 Feb – 22 Mar 2026"
    assert fmt_range(date(2025, 12, 29), date(2026, 1, 4)) == "29 Dec 2025 – 4 Jan 2026"


def test_axis_ticks_are_round() -> None:
    assert nice_ticks(83) == [0, 25, 50, 75, 100]
    assert nice_ticks(1500) == [0, 500, 1000, 1500]
    assert nice_ticks(0.21) == [0, 0.1, 0.2, 0.3]
    assert nice_ticks(0) == [0, 1]


# ----------------------------------------------------------------------------------------------
# The page in a browser


class DevTools:
    """Headless Chromium driven over the DevTools protocol (one page)."""

    def __init__(self, executable: str, profile: Path) -> None:
        self.events: list[dict[str, Any]] = []
        self._next_id = 0
        self._stack = ExitStack()
        self._process = subprocess.Popen(
            [
                executable,
                *CHROMIUM_FLAGS,
                f"--user-data-dir={profile}",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            port = self._port(profile / "DevToolsActivePort")
            with httpx.Client(trust_env=False, timeout=BROWSER_TIMEOUT) as client:
                targets = client.get(f"http://127.0.0.1:{port}/json/list").json()
            url = next(t["webSocketDebuggerUrl"] for t in targets if t["type"] == "page")
            from websockets.sync.client import connect

            self._socket = self._stack.enter_context(
                connect(url, max_size=None, open_timeout=BROWSER_TIMEOUT)
            )
        except BaseException:
            self.close()
            raise

    def _port(self, announcement: Path) -> int:
        deadline = time.monotonic() + BROWSER_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"chromium exited with {self._process.returncode}")
            if announcement.exists() and announcement.read_text().strip():
                return int(announcement.read_text().split()[0])
            time.sleep(0.05)
        raise TimeoutError("chromium did not open its DevTools port")

    def send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        self._next_id += 1
        ident = self._next_id
        self._socket.send(json.dumps({"id": ident, "method": method, "params": params or {}}))
        while True:
            message = json.loads(self._socket.recv(timeout=BROWSER_TIMEOUT))
            if message.get("id") == ident:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]
            self.events.append(message)

    def wait_for(self, event: str) -> dict[str, Any]:
        deadline = time.monotonic() + BROWSER_TIMEOUT
        while time.monotonic() < deadline:
            for message in self.events:
                if message.get("method") == event:
                    return message
            message = json.loads(self._socket.recv(timeout=deadline - time.monotonic()))
            self.events.append(message)
        raise TimeoutError(f"no {event} from chromium")

    def evaluate(self, expression: str) -> Any:
        reply = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in reply:
            raise RuntimeError(f"page script failed: {reply['exceptionDetails']}")
        return reply["result"]["value"]

    def close(self) -> None:
        self._stack.close()
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(10)


DOM_FACTS = """(() => {
  const box = (el) => { const r = el.getBoundingClientRect(); return [r.width, r.height]; };
  const section = (name) => document.querySelector('section.' + name);
  return {
    title: document.title,
    scripts: document.scripts.length,
    charts: [...document.querySelectorAll('svg.chart')].map(
      (svg) => ({label: svg.getAttribute('aria-label'), size: box(svg)})),
    tiles: [...document.querySelectorAll('.tile')].map((tile) => [
      tile.querySelector('.label').textContent, tile.querySelector('.value').textContent]),
    dayBars: section('volume').querySelectorAll('g.bar').length,
    barHeights: [...section('volume').querySelectorAll('g.bar rect')].map((r) => box(r)[1]),
    rateDots: section('missed').querySelectorAll('circle.dot').length,
    heatCells: section('heat').querySelectorAll('g.cell').length,
    callers: [...section('unreturned').querySelectorAll('tbody td:first-child')].map(
      (td) => td.textContent),
    userRows: section('users').querySelectorAll('tbody tr').length,
    fontSize: getComputedStyle(document.body).fontSize,
    height: document.documentElement.scrollHeight,
  };
})()"""


@pytest.fixture
def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.skip("chromium is not installed: the page is not rendered (CI installs it)")
    # The DevTools client; the websockets package comes with uvicorn[standard].
    pytest.importorskip("websockets.sync.client")
    return found


def _problems(events: list[dict[str, Any]]) -> list[str]:
    """Console errors, uncaught exceptions and error log entries the page caused."""
    found = []
    for event in events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.exceptionThrown":
            found.append(json.dumps(params["exceptionDetails"])[:300])
        elif method == "Runtime.consoleAPICalled" and params["type"] in {"error", "assert"}:
            found.append(json.dumps(params["args"])[:300])
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            found.append(params["entry"]["text"][:300])
    return found


def test_the_page_renders_in_chromium(
    chromium: str, built: Built, page_file: Path, tmp_path: Path
) -> None:
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    browser = DevTools(chromium, tmp_path / "chromium-profile")
    try:
        for domain in ("Page", "Runtime", "Log", "Network"):
            browser.send(f"{domain}.enable")
        browser.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": PAGE_WIDTH, "height": 900, "deviceScaleFactor": 1, "mobile": False},
        )
        browser.send("Page.navigate", {"url": page_file.as_uri()})
        browser.wait_for("Page.loadEventFired")
        facts = browser.evaluate(DOM_FACTS)
        shot = browser.send(
            "Page.captureScreenshot",
            {
                "format": "png",
                "captureBeyondViewport": True,
                "clip": {
                    "x": 0,
                    "y": 0,
                    "width": PAGE_WIDTH,
                    "height": facts["height"],
                    "scale": 1,
                },
            },
        )
        events = list(browser.events)
    finally:
        browser.close()
    screenshot = artifacts / "report_page.png"
    screenshot.write_bytes(base64.b64decode(shot["data"]))

    assert _problems(events) == []
    requested = [
        e["params"]["request"]["url"] for e in events if e["method"] == "Network.requestWillBeSent"
    ]
    assert requested == [page_file.as_uri()], "the page must load nothing else"
    assert facts["scripts"] == 0
    days = (LAST - FIRST).days + 1
    assert [chart["label"] for chart in facts["charts"]] == [
        "Calls per day, inbound and outbound",
        "Share of inbound calls missed per day",
        "Inbound calls by weekday and hour of day",
    ]
    for chart in facts["charts"]:
        width, height = chart["size"]
        assert width > 300 and height > 150, chart
    assert facts["dayBars"] == days
    assert all(height > 0 for height in facts["barHeights"][::2])
    assert facts["rateDots"] == days
    assert facts["heatCells"] == 7 * 24
    assert HOSTILE_CALLER in facts["callers"]
    assert facts["userRows"] == OPTIONS.users + 1  # the planted unknown user has calls too
    assert dict(facts["tiles"])["Calls"] == f"{len(built.truth):,}"
    assert facts["fontSize"] == "14px"
    assert screenshot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert screenshot.stat().st_size > 20_000
