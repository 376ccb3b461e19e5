"""The real-time commands: ``webhooks`` (subscribe, list, renew, unsubscribe), ``receive``,
``drain``, and ``demo --live``; the signing key never printed."""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import SMALL

from vis_pipeline.cli import main
from vis_pipeline.simulator.process import SimulatorProcess
from vis_pipeline.spool import SpoolEntry, SpoolWriter, spool_folder
from vis_pipeline.webhook_signing import key_path


@pytest.fixture
def env(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, warehouse_path: Path
) -> Iterator[pytest.MonkeyPatch]:
    """A working directory of the test's own, the webhook folder and warehouse inside it."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VIS_WEBHOOK_HOME", str(tmp_path / "webhook"))
    monkeypatch.setenv("VIS_WAREHOUSE", str(warehouse_path))
    yield monkeypatch


def test_webhooks_subscribe_list_renew_unsubscribe_never_print_the_key(
    env: pytest.MonkeyPatch, simulator: SimulatorProcess, tmp_path: Path,
    capsys: pytest.CaptureFixture,
) -> None:  # fmt: skip
    assert main(["webhooks", "renew"]) == 2  # no credentials
    env.setenv("VIS_BASE_URL", simulator.base_url)
    env.setenv("VIS_ACCESS_TOKEN", simulator.token)
    assert main(["webhooks", "renew"]) == 2  # nothing subscribed
    assert main(["webhooks", "subscribe", "--url", "http://127.0.0.1:8090/vis"]) == 0
    key_file = key_path(tmp_path / "webhook")
    key = key_file.read_text().strip()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    webhook_id = re.search(r"subscribed webhook (\d+)", capsys.readouterr().out).group(1)
    assert main(["webhooks", "list"]) == 0
    listed = capsys.readouterr().out
    assert re.search(rf"^{webhook_id}\s+yes\s+ACTIVE\s+False", listed, re.MULTILINE)
    assert main(["webhooks", "renew"]) == 0
    assert f"renewed webhook {webhook_id}" in capsys.readouterr().out
    assert main(["webhooks", "unsubscribe", "--id", webhook_id]) == 0
    assert main(["webhooks", "unsubscribe", "--id", webhook_id]) == 0
    out, err = capsys.readouterr()
    assert f"deleted webhook {webhook_id}" in out and "already gone" in out
    assert key not in out + err + listed


def test_receive_without_a_key_says_so_in_one_line(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "vis_pipeline.cli", "receive", "--port", "0"],
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        f"vis-pipeline: no webhook signing key at {tmp_path / 'webhook' / 'signing-key'}: "
        "run `vis-pipeline webhooks subscribe` first"
    ]


def test_drain_merges_what_is_spooled_and_says_what_it_did(
    env: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    writer = SpoolWriter(spool_folder(tmp_path / "webhook"))
    body = (
        b'{"id": 5, "type": "CALL", "accountId": 1, "userId": 2, "uciId": 3, '
        b'"direction": "OUTBOUND", "state": "RINGING", "phoneNumber": "+15550105", '
        b'"startTime": "2026-03-03T10:00:00.000Z"}'
    )
    writer.append([SpoolEntry(1, body), SpoolEntry(2, body)])
    writer.close()
    assert main(["drain"]) == 0
    assert capsys.readouterr().out == (
        "drained 2 deliveries: 1 events (1 new, 0 behind the warehouse, 0 rejected); "
        "days 2026-03-03\n"
    )
    assert main(["drain"]) == 0
    assert capsys.readouterr().out == ""


def test_the_live_demo_shows_calls_landing_while_the_clock_runs(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIS_", "DAGSTER_"))}
    done = subprocess.run(
        [sys.executable, "-m", "vis_pipeline.cli", "demo", "--days", "2", "--calls-per-day",
         str(SMALL.calls_per_day * 4), "--live", "--live-seconds", "5"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    lines = re.findall(r"\+\s*(\d+) events .*?:\s+(\d+) calls in vis\.events", done.stdout)
    assert len(lines) == 5
    landed = [int(added) for added, _ in lines]
    held = [int(total) for _, total in lines]
    assert sum(landed) > 0 and held[-1] > held[0]
    assert "live: webhook" in done.stdout
    key = (tmp_path / "data" / "webhook" / "signing-key").read_text().strip()
    assert key not in done.stdout + done.stderr
