"""The subscription's life against the simulator: subscribe, renew, unsubscribe, and the upkeep
that renews before expiry, renews a failed or expired webhook, subscribes again where the API
forgot it, and says which stretch of time may have missed deliveries."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest

from vis_pipeline.client import VISClient
from vis_pipeline.records import parse_instant_ms
from vis_pipeline.simulator.process import SimulatorOptions, SimulatorProcess
from vis_pipeline.subscriptions import recorded, renew, subscribe, unsubscribe, upkeep
from vis_pipeline.webhook_signing import key_path, read_key

OPTIONS = SimulatorOptions(
    seed=9, start="2026-03-02", days=2, calls_per_day=200, users=4, now="2026-03-03T09:00:00.000Z"
)
DAY = timedelta(days=1)
NOWHERE = "http://127.0.0.1:9/hook"
"""A URL nothing listens on (the discard port): every delivery fails."""


@pytest.fixture
def sim() -> Iterator[SimulatorProcess]:
    with SimulatorProcess(OPTIONS) as process:
        process.control.set_behaviour(webhook_retry_seconds=0.01)
        yield process


@pytest.fixture
def client(sim: SimulatorProcess) -> Iterator[VISClient]:
    with VISClient(sim.base_url, sim.token) as api:
        yield api


def clock(sim: SimulatorProcess) -> datetime:
    """The simulator's clock reading: the API's now."""
    return datetime.fromisoformat(sim.control.now())


def test_subscribe_renew_unsubscribe_with_one_private_key(
    sim: SimulatorProcess, client: VISClient, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    home = tmp_path / "webhook"
    hook = subscribe(client, home, "http://127.0.0.1:8999/vis")
    key = read_key(key_path(home))
    assert stat.S_IMODE(key_path(home).stat().st_mode) == 0o600
    assert (hook["metadataPolicy"], hook["signingAlgo"], hook["url"]) == (
        "HEADER",
        "HMAC_SHA256",
        "http://127.0.0.1:8999/vis",
    )
    second = subscribe(client, home, "http://127.0.0.1:8999/other")
    assert read_key(key_path(home)) == key  # one key for every subscription
    assert [s.webhook_id for s in recorded(home)] == [hook["id"], second["id"]]
    record = (home / "subscriptions.json").read_text()
    assert key.value not in record and key.value not in repr(recorded(home))

    sim.control.advance(3 * 86_400)
    renewed = renew(client, home, hook["id"])
    assert renewed["renewedAt"] == sim.control.now()
    assert unsubscribe(client, home, hook["id"]) is True
    assert unsubscribe(client, home, hook["id"]) is False
    assert [s.webhook_id for s in recorded(home)] == [second["id"]]
    assert [h["id"] for h in client.list_webhooks()] == [second["id"]]
    assert key.value not in capsys.readouterr().out


def test_upkeep_leaves_a_healthy_webhook_and_renews_one_about_to_expire(
    sim: SimulatorProcess, client: VISClient, tmp_path: Path
) -> None:
    home = tmp_path / "webhook"
    hook = subscribe(client, home, NOWHERE.replace(":9/", ":8/"))
    (done,) = upkeep(client, home, clock(sim), renew_within=3 * DAY)
    assert (done.action, done.gap, done.expire_at) == ("healthy", None, hook["expireAt"])
    sim.control.set_now("2026-03-10T12:00:00.000Z")  # expires on the 13th at 09:00
    (done,) = upkeep(client, home, clock(sim), renew_within=3 * DAY)
    assert (done.action, done.reason, done.gap) == ("renewed", "expiring", None)
    assert done.expire_at == "2026-03-20T12:00:00.000Z"


def test_upkeep_renews_a_failed_webhook_and_names_the_gap_since_it_was_last_healthy(
    sim: SimulatorProcess, client: VISClient, tmp_path: Path
) -> None:
    home = tmp_path / "webhook"
    hook = subscribe(client, home, NOWHERE)
    healthy_at = clock(sim)
    assert upkeep(client, home, healthy_at, renew_within=DAY)[0].action == "healthy"
    sim.control.advance(600)
    sim.control.wait_for_deliveries()
    assert client.view_webhook(hook["id"])["statistics"]["failed"] is True
    sim.control.advance(1800)
    (done,) = upkeep(client, home, clock(sim), renew_within=DAY)
    assert (done.action, done.reason) == ("renewed", "failed")
    assert done.gap == (int(healthy_at.timestamp() * 1000), parse_instant_ms(sim.control.now()))
    assert client.view_webhook(hook["id"])["statistics"]["failed"] is False


def test_upkeep_renews_an_expired_webhook_and_subscribes_again_where_it_is_gone(
    sim: SimulatorProcess, client: VISClient, tmp_path: Path
) -> None:
    home = tmp_path / "webhook"
    # After the data's last call: nothing to deliver, so nothing fails, it only expires.
    sim.control.set_now("2026-03-04T01:00:00.000Z")
    hook = subscribe(client, home, NOWHERE)
    key = read_key(key_path(home))
    expire_ms = parse_instant_ms(hook["expireAt"])
    # Nobody looked for twelve days: it expired on the way.
    sim.control.set_now("2026-03-16T01:00:00.000Z")
    sim.control.wait_for_deliveries()
    assert sim.control.deliveries()["deliveries"] == []
    (done,) = upkeep(client, home, clock(sim), renew_within=DAY)
    assert (done.action, done.reason) == ("renewed", "expired")
    assert done.gap == (parse_instant_ms(hook["createdAt"]), parse_instant_ms(sim.control.now()))
    assert done.gap[0] < expire_ms

    # The API forgets it (purged, or deleted by hand): subscribed again, same URL, same key.
    with httpx.Client(base_url=sim.base_url, trust_env=False) as raw:
        bearer = {"Authorization": f"Bearer {sim.token}"}
        raw.delete(f"/self/webhooks/{hook['id']}", headers=bearer)
    sim.control.advance(3600)
    (done,) = upkeep(client, home, clock(sim), renew_within=DAY)
    assert (done.action, done.reason) == ("resubscribed", "gone")
    assert done.webhook_id != hook["id"]
    assert [s.webhook_id for s in recorded(home)] == [done.webhook_id]
    assert [h["url"] for h in client.list_webhooks()] == [hook["url"]]
    assert read_key(key_path(home)) == key
    then = parse_instant_ms("2026-03-16T01:00:00.000Z")
    assert done.gap == (then, parse_instant_ms(sim.control.now()))
