"""Tokens that expire: where they come from, how they are renewed, and that no credential leaks.

Everything runs against a simulator whose token endpoint issues 5-second tokens, over real
HTTP on 127.0.0.1. What the tests hold against: the simulator's own truth of events, its
statistics of API and token requests, the list of every token it issued, and a token command
that writes down each time it runs.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import os
import pickle
import shlex
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import httpx
import psutil
import pytest
from helpers import SMALL, assert_same_events, expected_events, warehouse_events

from vis_pipeline.auth import (
    CommandToken,
    OAuthConfig,
    OAuthToken,
    StaticToken,
    TokenProvider,
    token_provider,
)
from vis_pipeline.client import ClientSettings, VISClient
from vis_pipeline.defs.resources import build_resources
from vis_pipeline.errors import VISAuthError, VISTokenError
from vis_pipeline.extract import ExtractOptions, WindowExtractor
from vis_pipeline.extract_process import ExtractionProcess
from vis_pipeline.retry import RetryPolicy
from vis_pipeline.settings import SECRET_VARIABLES, Settings, SettingsError
from vis_pipeline.simulator import add_arguments, options_from_args
from vis_pipeline.simulator.options import OptionsError
from vis_pipeline.simulator.process import SimulatorProcess
from vis_pipeline.sync import local_day_window, sync_days
from vis_pipeline.warehouse import connect

CLIENT_ID = "vis-test-client"
CLIENT_SECRET = "cs-5f1e9a7c2b44-not-for-eyes"
USERNAME = "vis-test-user"
PASSWORD = "pw-83d0c4e6a1f9-not-for-eyes"
STATIC_TOKEN = "st-2d7b1e90c3aa-not-for-eyes"
"""Credentials of the simulator below: long and unique, so a search for them means something."""

TOKEN_LIFE = 5.0
"""Seconds an access token from the simulator lives."""

EXPIRING = replace(
    SMALL,
    token=STATIC_TOKEN,
    token_ttl_seconds=TOKEN_LIFE,
    client_id=CLIENT_ID,
    client_secret=CLIENT_SECRET,
    username=USERNAME,
    password=PASSWORD,
)
"""The small data set, behind 5-second tokens."""

FIRST = date.fromisoformat(SMALL.start)
LAST = FIRST + timedelta(days=SMALL.days - 1)

CLI_TIMEOUT_SECONDS = 240
"""Longest a command of these tests may run before the test fails instead of hanging."""


@pytest.fixture(scope="module")
def simulator() -> Iterator[SimulatorProcess]:
    """This module's simulator (``fresh_simulator`` resets it around each test)."""
    with SimulatorProcess(EXPIRING) as sim:
        yield sim


def oauth(sim: SimulatorProcess, grant: str = "password", **changes: Any) -> OAuthToken:
    """A provider signing in to ``sim``'s token endpoint with the right credentials."""
    password_grant = grant == "password"
    config = OAuthConfig(
        sim.token_url,
        grant,
        CLIENT_ID,
        CLIENT_SECRET,
        username=USERNAME if password_grant else "",
        password=PASSWORD if password_grant else "",
    )
    return OAuthToken(replace(config, **changes))


def tokens(sim: SimulatorProcess) -> dict[str, Any]:
    """The simulator's token statistics."""
    return sim.control.stats()["tokens"]


def api_statuses(sim: SimulatorProcess) -> dict[str, int]:
    """API requests by status, all operations together."""
    totals: dict[str, int] = {}
    for counts in sim.control.stats()["requests"].values():
        for status, count in counts.items():
            totals[status] = totals.get(status, 0) + count
    return totals


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def every_secret(sim: SimulatorProcess, *more: str) -> list[str]:
    """Every credential of these tests and every token the simulator ever issued."""
    issued = sim.control.issued_tokens()
    return [
        CLIENT_SECRET,
        PASSWORD,
        STATIC_TOKEN,
        *issued["access_tokens"],
        *issued["refresh_tokens"],
        *more,
    ]


def assert_no_secret_in(secrets: list[str], texts: list[str], folder: Path | None = None) -> int:
    """No secret in any of ``texts`` nor in any file under ``folder``; the files searched."""
    for text in texts:
        for secret in secrets:
            assert secret not in text, "a secret was shown"
    searched = 0
    for path in sorted(folder.rglob("*")) if folder is not None else []:
        if path.is_file():
            content = path.read_bytes()
            searched += 1
            for secret in secrets:
                assert secret.encode() not in content, f"a secret is stored in {path.name}"
    return searched


def text_of(exc: BaseException) -> str:
    """Everything an exception shows: message, repr, notes and formatted traceback."""
    return "\n".join([str(exc), repr(exc), *traceback.format_exception(exc)])


# -- the simulator's token endpoint ------------------------------------------------------------


def test_the_simulator_issues_expiring_tokens_and_rotates_refresh_tokens(
    fresh_simulator: SimulatorProcess,
) -> None:
    sim = fresh_simulator
    form = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    with httpx.Client(trust_env=False) as http:
        signed_in = http.post(
            sim.token_url,
            data={**form, "grant_type": "password", "username": USERNAME, "password": PASSWORD},
        )
        assert signed_in.status_code == 200 and signed_in.headers["cache-control"] == "no-store"
        answer = signed_in.json()
        assert answer["token_type"] == "Bearer" and answer["expires_in"] == TOKEN_LIFE
        bearer = {"Authorization": f"Bearer {answer['access_token']}"}
        assert http.get(f"{sim.base_url}/self", headers=bearer).status_code == 200
        sim.control.expire_access_tokens()
        assert http.get(f"{sim.base_url}/self", headers=bearer).status_code == 401

        spent = answer["refresh_token"]
        again = {**form, "grant_type": "refresh_token", "refresh_token": spent}
        renewed = http.post(sim.token_url, data=again)
        assert renewed.status_code == 200 and renewed.json()["refresh_token"] != spent
        assert http.post(sim.token_url, data=again).json()["error"] == "invalid_grant"

        assert sim.control.revoke_refresh_tokens() == 1
        latest = {**again, "refresh_token": renewed.json()["refresh_token"]}
        assert http.post(sim.token_url, data=latest).json()["error"] == "invalid_grant"

        # HTTP Basic authenticates the client as well as the form does; the grant gives no
        # refresh token.
        basic = http.post(
            sim.token_url,
            data={"grant_type": "client_credentials"},
            auth=(CLIENT_ID, CLIENT_SECRET),
        )
        assert basic.status_code == 200 and "refresh_token" not in basic.json()
        wrong = http.post(
            sim.token_url, data={"grant_type": "client_credentials"}, auth=(CLIENT_ID, "nope")
        )
        assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
    assert tokens(sim) == {
        "requests": 6,
        "issued": 3,
        "refused": 3,
        "by_grant": {
            "client_credentials": {"200": 1, "401": 1},
            "password": {"200": 1},
            "refresh_token": {"200": 1, "400": 2},
        },
        "expired": 1,
    }


def test_a_token_expires_after_its_life(fresh_simulator: SimulatorProcess) -> None:
    provider = oauth(fresh_simulator, "client_credentials")
    with VISClient(fresh_simulator.base_url, provider, retry=RetryPolicy(max_attempts=1)) as c:
        c.get_user()
        stale = provider.token()
        time.sleep(TOKEN_LIFE + 0.2)
        with httpx.Client(trust_env=False) as http:
            refused = http.get(
                f"{fresh_simulator.base_url}/self", headers={"Authorization": f"Bearer {stale}"}
            )
        assert refused.status_code == 401
        c.get_user()  # the provider renews it before use
    assert tokens(fresh_simulator)["issued"] == 2


def test_the_simulator_takes_its_credentials_from_the_command_line_and_hides_them() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    flags = ["--token-ttl-seconds", "5", "--client-id", CLIENT_ID, "--client-secret", CLIENT_SECRET]
    flags += ["--username", USERNAME, "--password", PASSWORD]
    options = options_from_args(parser.parse_args(flags))
    assert (options.token_ttl_seconds, options.client_id, options.username) == (
        5.0,
        CLIENT_ID,
        USERNAME,
    )
    assert (options.client_secret, options.password) == (CLIENT_SECRET, PASSWORD)
    assert_no_secret_in([CLIENT_SECRET, PASSWORD], [repr(options), repr(SimulatorProcess(options))])
    with pytest.raises(OptionsError, match="token_ttl_seconds"):
        replace(options, token_ttl_seconds=0)


# -- renewing: ahead of expiry, on a 401, once for many callers ---------------------------------


def _fetch_pages_at_once(client: VISClient, sim: SimulatorProcess, count: int) -> None:
    """``count`` page fetches released together, each checked against the simulator's truth."""
    start, end = local_day_window(FIRST, "UTC")
    truth = sorted(event["id"] for event in sim.control.truth(ms(start), ms(end)))
    size = 10
    pages = len(truth) // size
    gate = threading.Barrier(count)

    def fetch(number: int) -> None:
        page = number % pages
        gate.wait()
        events = client.list_events(
            from_date=start, to_date=end, offset=page, size=size, sort="id", order="ASC"
        )
        assert [event["id"] for event in events] == truth[page * size : (page + 1) * size]

    with ThreadPoolExecutor(count) as pool:
        list(pool.map(fetch, range(count)))


def test_200_concurrent_pages_at_the_expiry_cause_one_refresh(
    fresh_simulator: SimulatorProcess,
) -> None:
    sim = fresh_simulator
    with VISClient(sim.base_url, oauth(sim), concurrency=50) as client:
        client.get_user()
        time.sleep(TOKEN_LIFE + 0.2)  # the token is dead, on both sides
        _fetch_pages_at_once(client, sim, 200)
    assert tokens(sim)["by_grant"] == {"password": {"200": 1}, "refresh_token": {"200": 1}}
    assert api_statuses(sim) == {"200": 201}


def test_200_concurrent_pages_refused_with_401_cause_one_refresh(
    fresh_simulator: SimulatorProcess,
) -> None:
    sim = fresh_simulator
    with VISClient(sim.base_url, oauth(sim), concurrency=50) as client:
        client.get_user()
        # The server ends every token's life while the client still thinks its own is fresh.
        sim.control.expire_access_tokens()
        _fetch_pages_at_once(client, sim, 200)
    assert tokens(sim)["issued"] == 2
    statuses = api_statuses(sim)
    # Each page refused once at most, and sent again once: 201 answers, some of them after a 401.
    assert statuses["200"] == 201 and 1 <= statuses.get("401", 0) <= 200


class _RefusedTokens:
    """A provider whose every token the API refuses: it always has a newer one to offer."""

    def __init__(self) -> None:
        self.handed = 0

    def token(self) -> str:
        return f"refused-{self.handed}"

    def refresh(self, stale: str) -> str:
        self.handed += 1
        return self.token()

    def secrets(self) -> tuple[str, ...]:
        return tuple(f"refused-{n}" for n in range(self.handed + 1))


def test_a_401_is_answered_with_one_renewal_only(fresh_simulator: SimulatorProcess) -> None:
    provider = _RefusedTokens()
    with VISClient(fresh_simulator.base_url, provider) as client, pytest.raises(VISAuthError):
        client.get_user()
    assert provider.handed == 1
    assert fresh_simulator.control.stats()["requests"] == {"getUser": {"401": 2}}


def test_a_static_token_is_not_renewed_on_a_401(fresh_simulator: SimulatorProcess) -> None:
    with (
        VISClient(fresh_simulator.base_url, StaticToken("not-the-token")) as client,
        pytest.raises(VISAuthError, match="token was rejected"),
    ):
        client.get_user()
    assert fresh_simulator.control.stats()["total"] == 1


# -- refused credentials ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("grant", "changes", "named"),
    [
        ("client_credentials", {"client_secret": "wrong-secret-1b9e"}, "VIS_CLIENT_SECRET"),
        ("password", {"client_secret": "wrong-secret-1b9e"}, "VIS_CLIENT_SECRET"),
        ("password", {"password": "wrong-password-4c2d"}, "VIS_PASSWORD"),
        ("client_credentials", {"client_id": "nobody"}, "VIS_CLIENT_ID"),
    ],
)
def test_a_refused_credential_is_named_once_and_never_asked_again(
    fresh_simulator: SimulatorProcess, grant: str, changes: dict[str, str], named: str
) -> None:
    provider = oauth(fresh_simulator, grant, **changes)
    with VISClient(fresh_simulator.base_url, provider) as client:
        for _ in range(3):
            with pytest.raises(VISTokenError) as caught:
                client.list_events(size=5)
    message = str(caught.value)
    assert named in message and "refused" in message and "\n" not in message
    assert_no_secret_in([*changes.values(), CLIENT_SECRET, PASSWORD], [text_of(caught.value)])
    assert tokens(fresh_simulator)["requests"] == 1
    assert fresh_simulator.control.stats()["total"] == 0


def test_a_revoked_refresh_token_is_named_and_not_replaced_by_signing_in_again(
    fresh_simulator: SimulatorProcess,
) -> None:
    sim = fresh_simulator
    provider = oauth(sim)
    with VISClient(sim.base_url, provider) as client:
        client.get_user()
        sim.control.revoke_refresh_tokens()
        sim.control.expire_access_tokens()
        with pytest.raises(VISTokenError, match="the refresh token") as caught:
            client.get_user()
    assert "revoked" in str(caught.value)
    assert tokens(sim)["by_grant"] == {"password": {"200": 1}, "refresh_token": {"400": 1}}
    assert_no_secret_in(every_secret(sim), [text_of(caught.value), repr(provider)])


# -- a token command ---------------------------------------------------------------------------

_TOKEN_SCRIPT = """
import sys, time
with open(sys.argv[1], "a") as runs:
    runs.write(f"{time.time()}\\n")
if len(sys.argv) > 3:
    with open(sys.argv[3]) as complaint:
        print(complaint.read(), file=sys.stderr)
    sys.exit(3)
print(sys.argv[2])
"""
"""A secret manager's client: notes when it runs, then prints the token (or fails)."""


def token_command(tmp_path: Path, token: str = STATIC_TOKEN, complaint: str = "") -> str:
    """VIS_TOKEN_COMMAND running the script above; its runs are noted in ``runs.txt``."""
    script = tmp_path / "print_token.py"
    script.write_text(_TOKEN_SCRIPT, encoding="utf-8")
    words = [sys.executable, str(script), str(tmp_path / "runs.txt"), token]
    if complaint:
        # Said through a file: the command's own arguments are scrubbed from what it says.
        said = tmp_path / "complaint.txt"
        said.write_text(complaint, encoding="utf-8")
        words.append(str(said))
    return shlex.join(words)


def runs_of(tmp_path: Path) -> list[float]:
    """When the token command ran."""
    path = tmp_path / "runs.txt"
    if not path.exists():
        return []
    return [float(line) for line in path.read_text(encoding="utf-8").split()]


def test_200_concurrent_requests_run_the_token_command_once(
    fresh_simulator: SimulatorProcess, tmp_path: Path
) -> None:
    provider = CommandToken(token_command(tmp_path), ttl_seconds=60)
    with VISClient(fresh_simulator.base_url, provider, concurrency=50) as client:
        _fetch_pages_at_once(client, fresh_simulator, 200)
    assert len(runs_of(tmp_path)) == 1


@pytest.mark.slow
def test_the_token_command_runs_once_per_token_life_across_both_processes(
    fresh_simulator: SimulatorProcess, tmp_path: Path
) -> None:
    sim = fresh_simulator
    life = 2.0
    sim.control.set_behaviour(probability=1.0, kinds=["slow"], slow_seconds=0.4)
    provider = CommandToken(token_command(tmp_path), ttl_seconds=life)
    warehouse = tmp_path / "warehouse.sqlite"
    days = [FIRST + timedelta(days=n) for n in range(SMALL.days)]
    began = time.monotonic()
    with (
        VISClient(sim.base_url, provider, concurrency=2) as client,
        WindowExtractor(client, ExtractOptions(page_size=25)) as extractor,
    ):
        synced = sync_days(extractor, lambda: connect(warehouse), days, "UTC")
    elapsed = time.monotonic() - began
    assert [item.status for item in synced] == ["loaded"] * SMALL.days
    runs = runs_of(tmp_path)
    assert elapsed > 3 * life, "the extraction should outlive several token lives"
    # Run again only once the last token's life was over, and then as soon as a request
    # needed one (within about one slow answer): once per token life, never more, never less.
    gaps = [later - earlier for earlier, later in itertools.pairwise(runs)]
    assert len(runs) >= 3
    assert all(life * 0.95 <= gap <= life + 1.0 for gap in gaps), gaps
    start, end = local_day_window(FIRST, "UTC")[0], local_day_window(LAST, "UTC")[1]
    truth = sim.control.truth(ms(start), ms(end))
    assert_same_events(warehouse_events(warehouse), expected_events(truth, "UTC"))


@pytest.mark.parametrize(
    ("command", "said"),
    [
        ("failing", "failed with exit status 3: secret-manager: access denied"),
        ("silent", "printed no token"),
        ("missing", "could not be run (no-such-secret-manager-7f"),
    ],
)
def test_a_failing_token_command_is_reported_in_one_line(
    fresh_simulator: SimulatorProcess, tmp_path: Path, command: str, said: str
) -> None:
    text = {
        "failing": token_command(tmp_path, complaint="secret-manager: access denied"),
        "silent": token_command(tmp_path, token=""),
        "missing": "no-such-secret-manager-7f3 read vis",
    }[command]
    provider = CommandToken(text, ttl_seconds=60)
    with VISClient(fresh_simulator.base_url, provider) as client:
        for _ in range(2):
            with pytest.raises(VISTokenError) as caught:
                client.get_user()
    message = str(caught.value)
    assert message.startswith("no access token: VIS_TOKEN_COMMAND ") and said in message
    assert "\n" not in message
    assert len(runs_of(tmp_path)) == (0 if command == "missing" else 1)
    assert fresh_simulator.control.stats()["total"] == 0


# -- the extraction process ---------------------------------------------------------------------


def test_the_child_starts_on_the_parents_token_and_never_gets_its_refresh_token(
    fresh_simulator: SimulatorProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    sim = fresh_simulator
    provider = oauth(sim)
    for variable, value in [
        ("VIS_CLIENT_ID", CLIENT_ID),
        ("VIS_CLIENT_SECRET", CLIENT_SECRET),
        ("VIS_USERNAME", USERNAME),
        ("VIS_PASSWORD", PASSWORD),
        ("SOME_URL_WITH_IT", f"https://{USERNAME}:{PASSWORD}@example.invalid/"),
    ]:
        monkeypatch.setenv(variable, value)
    start = datetime.combine(FIRST, datetime.min.time(), UTC)
    windows = [(start, start + timedelta(hours=6))]
    with VISClient(sim.base_url, provider) as client:
        settings = client.settings
        assert settings is not None
        # The child starts (and pays for its imports) before the parent signs in.
        with ExtractionProcess(settings, ExtractOptions()) as process:
            (child,) = [
                c
                for c in psutil.Process().children()
                if "vis_pipeline.extract_process" in " ".join(c.cmdline())
            ]
            shown = " ".join(child.cmdline()) + " ".join(child.environ().values())
            variables = set(child.environ())
            client.get_user()
            refresh_token = sim.control.issued_tokens()["refresh_tokens"][0]
            assert refresh_token.encode() not in pickle.dumps(settings)
            (result,) = process.iter_windows(windows, lambda result: result)
    assert sorted(e["id"] for e in result.events) == sorted(
        e["id"] for e in sim.control.truth(*(ms(edge) for edge in windows[0]))
    )
    assert not variables & {*SECRET_VARIABLES, "SOME_URL_WITH_IT"}
    assert_no_secret_in(every_secret(sim), [shown])
    # The child worked on the token it was handed: no sign-in of its own.
    assert tokens(sim)["by_grant"] == {"password": {"200": 1}}


def test_no_log_line_holds_a_credential(
    fresh_simulator: SimulatorProcess, caplog: pytest.LogCaptureFixture
) -> None:
    sim = fresh_simulator
    for name in ("", "httpx", "httpcore", "vis_pipeline"):
        caplog.set_level(logging.DEBUG, logger=name)
    sim.control.set_behaviour(probability=0.3, kinds=["500"], seed=4)
    start = datetime.combine(FIRST, datetime.min.time(), UTC)
    windows = [(start + timedelta(days=n), start + timedelta(days=n + 1)) for n in range(2)]
    retry = RetryPolicy(base=0.0, max_attempts=20)
    with VISClient(sim.base_url, oauth(sim), retry=retry) as client:
        client.get_user()
        sim.control.expire_access_tokens()  # a 401, logged, and a renewal
        client.get_account()
        settings = client.settings
        assert settings is not None
        with ExtractionProcess(settings, ExtractOptions()) as process:
            results = list(process.iter_windows(windows, lambda result: result))
    assert sum(len(result.events) for result in results) == len(
        sim.control.truth(ms(windows[0][0]), ms(windows[-1][1]))
    )
    assert any("renewed token" in record.getMessage() for record in caplog.records)
    assert any("retrying" in record.getMessage() for record in caplog.records)
    messages = [record.getMessage() for record in caplog.records]
    assert_no_secret_in(every_secret(sim), [caplog.text, *messages])


# -- settings and Dagster ------------------------------------------------------------------------


def test_the_settings_choose_the_provider() -> None:
    oauth_settings = Settings(
        token_url="https://login.example.invalid/token",
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
    )
    assert type(token_provider(Settings(access_token=STATIC_TOKEN))) is StaticToken
    assert type(token_provider(oauth_settings)) is OAuthToken
    assert type(token_provider(Settings(token_command="vault read vis"))) is CommandToken
    shown = repr(oauth_settings) + repr(token_provider(oauth_settings))
    assert CLIENT_SECRET not in shown and "login.example.invalid" in shown


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        ({"VIS_ACCESS_TOKEN": "t", "VIS_TOKEN_COMMAND": "x"}, "are set together"),
        ({"VIS_TOKEN_URL": "https://x.invalid/token"}, "needs VIS_CLIENT_ID, VIS_CLIENT_SECRET"),
        (
            {
                "VIS_TOKEN_URL": "https://x.invalid/t",
                "VIS_TOKEN_GRANT": "password",
                "VIS_CLIENT_ID": "c",
            },
            "needs VIS_USERNAME, VIS_PASSWORD",
        ),
        ({"VIS_CLIENT_SECRET": CLIENT_SECRET}, "VIS_CLIENT_SECRET set without VIS_TOKEN_URL"),
        ({"VIS_TOKEN_GRANT": "implicit"}, "VIS_TOKEN_GRANT must be one of"),
        ({"VIS_TOKEN_URL": "ftp://x.invalid"}, "VIS_TOKEN_URL must be an http"),
    ],
)
def test_credentials_that_do_not_go_together_are_refused_by_name(
    values: dict[str, str], problem: str
) -> None:
    with pytest.raises(SettingsError, match=problem) as caught:
        Settings.from_env(values)
    assert CLIENT_SECRET not in str(caught.value)


def test_dagster_gets_every_credential_as_an_env_var_only() -> None:
    settings = Settings(
        token_url="https://login.example.invalid/token",
        token_grant="password",
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        username=USERNAME,
        password=PASSWORD,
    )
    vis = build_resources(settings)["vis"]
    for field, variable in [
        ("client_id", "VIS_CLIENT_ID"),
        ("client_secret", "VIS_CLIENT_SECRET"),
        ("username", "VIS_USERNAME"),
        ("password", "VIS_PASSWORD"),
    ]:
        value = getattr(vis, field)
        assert isinstance(value, dg.EnvVar) and value.env_var_name == variable
    # Credentials of another provider are not asked for at all.
    assert vis.access_token == "" and vis.token_command == ""
    assert_no_secret_in([CLIENT_SECRET, PASSWORD], [repr(vis), str(vis.model_dump())])
    assert set(SECRET_VARIABLES) >= {
        "VIS_ACCESS_TOKEN",
        "VIS_CLIENT_ID",
        "VIS_CLIENT_SECRET",
        "VIS_USERNAME",
        "VIS_PASSWORD",
    }


def test_client_settings_carry_the_provider_given_and_hide_it() -> None:
    provider: TokenProvider = StaticToken(STATIC_TOKEN)
    settings = ClientSettings.from_settings(Settings(access_token=STATIC_TOKEN), provider)
    assert settings.token is provider and STATIC_TOKEN not in repr(settings)
    assert settings.secrets() == (STATIC_TOKEN,)


# -- the nightly job: the command line, through Dagster, in its own process ----------------------


def cli_environment(sim: SimulatorProcess, folder: Path, **variables: str) -> dict[str, str]:
    """A clean environment for ``vis-pipeline`` against ``sim`` with OAuth, files in ``folder``."""
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("VIS_") and name != "DAGSTER_HOME"
    }
    environment.update(
        VIS_BASE_URL=sim.base_url,
        VIS_TOKEN_URL=sim.token_url,
        VIS_TOKEN_GRANT="password",
        VIS_CLIENT_ID=CLIENT_ID,
        VIS_CLIENT_SECRET=CLIENT_SECRET,
        VIS_USERNAME=USERNAME,
        VIS_PASSWORD=PASSWORD,
        VIS_WAREHOUSE=str(folder / "warehouse.sqlite"),
        DAGSTER_HOME=str(folder / "dagster_home"),
        VIS_START_DATE="2026-01-01",
    )
    environment.update(variables)
    return {name: value for name, value in environment.items() if value}


def run_cli(
    arguments: list[str], environment: dict[str, str], folder: Path
) -> subprocess.Popen[str]:
    """``vis-pipeline`` with ``arguments``, started in ``folder`` (no ``.env`` there)."""
    return subprocess.Popen(
        [sys.executable, "-m", "vis_pipeline.cli", *arguments],
        env=environment,
        cwd=folder,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finished(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    """Exit code, standard output and standard error of a command of these tests."""
    out, err = process.communicate(timeout=CLI_TIMEOUT_SECONDS)
    return process.returncode, out, err


def failure_lines(err: str) -> list[str]:
    """The lines of standard error that say what failed."""
    return [line for line in err.splitlines() if line.startswith("vis-pipeline:")]


def days_in_warehouse(folder: Path) -> dict[date, int]:
    """Events per local day in the warehouse of ``folder`` (nothing if it was never made)."""
    path = folder / "warehouse.sqlite"
    if not path.exists():
        return {}
    with connect(path, read_only=True) as conn:
        rows = conn.execute("SELECT local_date, count(*) FROM vis.events GROUP BY 1").fetchall()
    return dict(rows)


SLOW_PAGES = {"VIS_PAGE_SIZE": "25", "VIS_CONCURRENCY": "2"}
"""A sync of the small data set in small pages, two at a time: with every answer slow, it
takes over 30 s, six token lives."""

SLOW_SECONDS = 1.25


@pytest.mark.slow
def test_a_sync_that_outlives_six_tokens_is_exact_and_leaks_nothing(
    fresh_simulator: SimulatorProcess, tmp_path: Path
) -> None:
    sim = fresh_simulator
    sim.control.set_behaviour(probability=1.0, kinds=["slow"], slow_seconds=SLOW_SECONDS)
    environment = cli_environment(sim, tmp_path, **SLOW_PAGES)
    began = time.monotonic()
    code, out, err = finished(
        run_cli(
            ["sync", "--from", FIRST.isoformat(), "--to", LAST.isoformat()], environment, tmp_path
        )
    )
    elapsed = time.monotonic() - began
    assert code == 0, err
    assert elapsed > 30
    start, end = local_day_window(FIRST, "UTC")[0], local_day_window(LAST, "UTC")[1]
    truth = sim.control.truth(ms(start), ms(end))
    assert_same_events(
        warehouse_events(tmp_path / "warehouse.sqlite"), expected_events(truth, "UTC")
    )

    counted, statuses = tokens(sim), api_statuses(sim)
    # Each process signs in once with the password, then renews with its own refresh token, once
    # per token life while it works: bounded by the clock, not by the requests made. At least
    # the time the API spent answering slowly needs a token; at most the whole run did (a token
    # is renewed a fifth of its life early).
    busy = statuses["200"] * SLOW_SECONDS / int(SLOW_PAGES["VIS_CONCURRENCY"])
    assert counted["by_grant"]["password"] == {"200": 2}
    assert counted["refused"] == 0
    assert busy / TOKEN_LIFE - 1 <= counted["issued"] <= elapsed / (TOKEN_LIFE * 0.8) + 3
    assert counted["issued"] * 5 < statuses["200"]
    assert statuses.get("401", 0) <= counted["issued"] * int(SLOW_PAGES["VIS_CONCURRENCY"])

    exported = tmp_path / "volume.csv"
    export = ["export", "daily_call_volume", "--from", FIRST.isoformat(), "--to", LAST.isoformat()]
    export_code, export_out, export_err = finished(
        run_cli([*export, "--format", "csv", "--output", str(exported)], environment, tmp_path)
    )
    assert export_code == 0, export_err
    assert exported.exists()
    searched = assert_no_secret_in(every_secret(sim), [out, err, export_out, export_err], tmp_path)
    assert searched >= 3  # the warehouse, the export and Dagster's storage at least


@pytest.mark.slow
def test_a_refresh_token_revoked_mid_sync_fails_it_in_one_line_with_whole_days_only(
    fresh_simulator: SimulatorProcess, tmp_path: Path
) -> None:
    sim = fresh_simulator
    sim.control.set_behaviour(probability=1.0, kinds=["slow"], slow_seconds=SLOW_SECONDS)
    environment = cli_environment(sim, tmp_path, **SLOW_PAGES)
    process = run_cli(
        ["sync", "--from", FIRST.isoformat(), "--to", LAST.isoformat()], environment, tmp_path
    )
    deadline = time.monotonic() + CLI_TIMEOUT_SECONDS
    # Revoked once a refresh token has been used: the next renewal meets the revocation.
    while tokens(sim)["by_grant"].get("refresh_token", {}).get("200", 0) < 1:
        assert process.poll() is None, "the sync ended before it renewed a token"
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert sim.control.revoke_refresh_tokens() >= 1
    code, out, err = finished(process)
    assert code == 1
    # One line says what failed; the next only says where the whole log is.
    (line,) = failure_lines(err)
    assert err.splitlines()[0] == line and len(err.strip().splitlines()) == 2
    assert "Traceback" not in err and "--verbose" in err
    assert "the refresh token" in line and "refused" in line and "revoked" in line
    counted = tokens(sim)
    assert counted["refused"] == 1 and counted["requests"] <= 6
    # Whatever was loaded is whole days, each equal to the truth; the rest is not there at all.
    for day, count in days_in_warehouse(tmp_path).items():
        start, end = local_day_window(day, "UTC")
        assert count == len(sim.control.truth(ms(start), ms(end)))
    assert_no_secret_in(every_secret(sim), [out, err], tmp_path)


def test_a_wrong_client_secret_fails_the_sync_in_one_line_after_one_token_request(
    fresh_simulator: SimulatorProcess, tmp_path: Path
) -> None:
    wrong = "wrong-client-secret-9d41"
    environment = cli_environment(fresh_simulator, tmp_path, VIS_CLIENT_SECRET=wrong)
    code, out, err = finished(
        run_cli(
            ["sync", "--from", FIRST.isoformat(), "--to", LAST.isoformat()], environment, tmp_path
        )
    )
    assert code == 1
    assert err.strip().splitlines()[:1] == failure_lines(err)
    assert len(err.strip().splitlines()) == 2 and "--verbose" in err  # the log pointer
    (line,) = failure_lines(err)
    assert "VIS_CLIENT_SECRET" in line and "refused" in line
    assert tokens(fresh_simulator)["requests"] == 1
    assert fresh_simulator.control.stats()["total"] == 0
    assert days_in_warehouse(tmp_path) == {}
    assert_no_secret_in([wrong, *every_secret(fresh_simulator)], [out, err], tmp_path)


def test_a_failing_token_command_fails_the_sync_in_one_line(
    fresh_simulator: SimulatorProcess, tmp_path: Path
) -> None:
    command = token_command(tmp_path, complaint="secret-manager: access denied")
    environment = cli_environment(
        fresh_simulator,
        tmp_path,
        VIS_TOKEN_URL="",
        VIS_TOKEN_GRANT="",
        VIS_CLIENT_ID="",
        VIS_CLIENT_SECRET="",
        VIS_USERNAME="",
        VIS_PASSWORD="",
        VIS_TOKEN_COMMAND=command,
    )
    code, out, err = finished(
        run_cli(
            ["sync", "--from", FIRST.isoformat(), "--to", FIRST.isoformat()], environment, tmp_path
        )
    )
    assert code == 1
    assert err.strip().splitlines()[:1] == failure_lines(err)
    assert len(err.strip().splitlines()) == 2 and "--verbose" in err  # the log pointer
    (line,) = failure_lines(err)
    assert "VIS_TOKEN_COMMAND failed with exit status 3: secret-manager: access denied" in line
    assert len(runs_of(tmp_path)) == 1
    assert fresh_simulator.control.stats()["total"] == 0
    assert days_in_warehouse(tmp_path) == {}
    assert_no_secret_in(every_secret(fresh_simulator), [out, err], tmp_path / "dagster_home")
