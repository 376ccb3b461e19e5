"""Dagster as its users run it, for the tests: daemon, webserver, GraphQL, PostgreSQL, Chromium.

Each process starts in a session of its own, on loopback, writes its log to a file in the test's
folder, and is stopped with everything it started (code servers, run workers) when its ``with``
block ends: asked first, killed after a grace period. Every wait is bounded, and a wait that
fails says what it waited for and shows the end of the logs of the processes involved.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from importlib.resources import files
from pathlib import Path
from typing import IO, Any, TypeVar

import httpx

REPO = Path(__file__).resolve().parent.parent
WORKSPACE = REPO / "workspace.yaml"
"""The committed workspace: what ``dagster-daemon run`` and ``dagster-webserver`` load."""

LOCATION = "vis_pipeline.defs"
REPOSITORY = "__repository__"
SYNC_JOB = "sync_vis"
SCHEDULE = "daily_sync"

STOP_GRACE_SECONDS = 15.0
"""How long a stopped process may take to shut down before its whole session is killed."""

T = TypeVar("T")


# ----------------------------------------------------------------------------------------------
# Processes


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def clean_environment(**values: str) -> dict[str, str]:
    """This process's environment without any project or Dagster setting, plus ``values``.

    The children must see only what the test gives them: CI exports a DAGSTER_HOME of its own.
    """
    kept = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("VIS_", "DAGSTER_", "PYTEST_"))
    }
    return {**kept, "PYTHONUNBUFFERED": "1", **values}


def seed_home(home: Path, instance_settings: str | None = None) -> Path:
    """A new DAGSTER_HOME holding ``instance_settings`` (default: the packaged dagster.yaml)."""
    home.mkdir(parents=True, exist_ok=True)
    if instance_settings is None:
        instance_settings = (
            files("vis_pipeline.dagster_defaults").joinpath("dagster.yaml").read_text()
        )
    (home / "dagster.yaml").write_text(instance_settings, encoding="utf-8")
    return home


def migrate_instance(home: Path, env: Mapping[str, str]) -> None:
    """Create the instance's storage once, before its processes start (as a deployment does).

    A daemon and a webserver that both find the storage empty both create it, and the second
    breaks the first's schema version table ("more than one head present").
    """
    command = [console_script("dagster"), "instance", "migrate"]
    done = subprocess.run(
        command,
        env={**env, "DAGSTER_HOME": str(home)},
        cwd=home,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def console_script(name: str) -> str:
    """The installed command ``name`` of this Python (``dagster-daemon``, ``dagster-webserver``)."""
    beside = Path(sysconfig.get_path("scripts")) / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"{name} is not installed beside {sys.executable}")
    return found


class Service:
    """A long-running process in its own session, logging to ``log_path``."""

    def __init__(
        self, name: str, command: Sequence[str], *, cwd: Path, env: Mapping[str, str], logs: Path
    ) -> None:
        self.name = name
        self.command = list(command)
        self.cwd = cwd
        self.env = dict(env)
        logs.mkdir(parents=True, exist_ok=True)
        self.log_path = logs / f"{name}.log"
        self._log: IO[bytes] | None = None
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Service:
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.command,
            cwd=self.cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, characters: int = 3000) -> str:
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return f"--- {self.name} ({self.log_path}) ---\n{text[-characters:]}"

    def stop(self) -> None:
        """Ask the whole session to stop (SIGTERM), then kill what is left of it."""
        if self.process is None:
            return
        group = self.process.pid
        _signal_group(group, signal.SIGTERM)
        with suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=STOP_GRACE_SECONDS)
        # Code servers and run workers share the session: none may outlive the test.
        _signal_group(group, signal.SIGKILL)
        self.process.wait()
        if self._log is not None:
            self._log.close()


def _signal_group(group: int, signal_number: int) -> None:
    with suppress(ProcessLookupError):
        os.killpg(group, signal_number)


def daemon(home: Path, cwd: Path, env: Mapping[str, str], logs: Path) -> Service:
    """``dagster-daemon run`` on the committed workspace: schedules, backfills, the run queue."""
    command = [console_script("dagster-daemon"), "run", "-w", str(WORKSPACE)]
    return Service("daemon", command, cwd=cwd, env={**env, "DAGSTER_HOME": str(home)}, logs=logs)


def webserver(home: Path, cwd: Path, env: Mapping[str, str], logs: Path, port: int) -> Service:
    """``dagster-webserver`` on the committed workspace, serving the UI and its GraphQL."""
    command = [console_script("dagster-webserver"), "-w", str(WORKSPACE)]
    command += ["-h", "127.0.0.1", "-p", str(port)]
    return Service("webserver", command, cwd=cwd, env={**env, "DAGSTER_HOME": str(home)}, logs=logs)


def wait_for(
    condition: Callable[[], T | None],
    *,
    timeout: float,
    what: str,
    services: Sequence[Service] = (),
    interval: float = 0.5,
) -> T:
    """The first true value of ``condition()``; AssertionError (with the logs) after ``timeout``
    seconds or as soon as one of ``services`` has exited."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        dead = [service for service in services if not service.alive()]
        if dead or time.monotonic() > deadline:
            reason = f"{dead[0].name} exited" if dead else f"not within {timeout:.0f} s"
            logs = "\n".join(service.log_tail() for service in services)
            raise AssertionError(f"waiting for {what}: {reason}\n{logs}")
        time.sleep(interval)


# ----------------------------------------------------------------------------------------------
# The webserver's GraphQL, as the UI uses it

_REPOSITORY_SELECTOR = {"repositoryLocationName": LOCATION, "repositoryName": REPOSITORY}

LOCATION_QUERY = """
query { workspaceOrError { ... on Workspace { locationEntries {
  name loadStatus
  locationOrLoadError { __typename ... on PythonError { message }
    ... on RepositoryLocation { repositories { name } } } } } } }
"""

RUNS_QUERY = """
query { runsOrError { ... on Runs { results {
  runId status jobName creationTime startTime endTime tags { key value } } } } }
"""

RUN_EVENTS_QUERY = """
query ($runId: ID!) { logsForRun(runId: $runId, limit: 10000) {
  ... on EventConnection { events { __typename ... on MessageEvent { message timestamp } } } } }
"""

START_SCHEDULE = """
mutation ($selector: ScheduleSelector!) { startSchedule(scheduleSelector: $selector) {
  __typename ... on ScheduleStateResult { scheduleState { id status } }
  ... on PythonError { message } } }
"""

STOP_SCHEDULE = """
mutation ($id: String!) { stopRunningSchedule(id: $id) {
  __typename ... on PythonError { message } } }
"""

SCHEDULE_QUERY = """
query ($selector: ScheduleSelector!) { scheduleOrError(scheduleSelector: $selector) {
  ... on Schedule { name cronSchedule executionTimezone
    scheduleState { status ticks(limit: 10) { status runIds timestamp } } } } }
"""

LAUNCH_BACKFILL = """
mutation ($params: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $params) {
  __typename ... on LaunchBackfillSuccess { backfillId }
  ... on PythonError { message } ... on PartitionSetNotFoundError { message } } }
"""

BACKFILL_QUERY = """
query ($id: String!) { partitionBackfillOrError(backfillId: $id) {
  ... on PartitionBackfill { id status runs(limit: 10) { runId status } } } }
"""

LAUNCH_RUN = """
mutation ($params: ExecutionParams!) { launchPipelineExecution(executionParams: $params) {
  __typename ... on LaunchRunSuccess { run { runId } }
  ... on PythonError { message } ... on RunConfigValidationInvalid { errors { message } } } }
"""


class GraphQL:
    """The webserver's GraphQL endpoint: the same queries and mutations the UI sends."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = httpx.Client(timeout=30.0, trust_env=False)

    def close(self) -> None:
        self._client.close()

    def __call__(self, query: str, **variables: Any) -> dict[str, Any]:
        """The ``data`` of the answer; AssertionError if GraphQL reports errors."""
        answer = self._client.post(
            f"{self.base_url}/graphql", json={"query": query, "variables": variables}
        )
        body = answer.json()
        assert not body.get("errors"), body["errors"]
        return body["data"]

    def location_loaded(self) -> bool:
        """Whether the webserver answers and has loaded the project's code location."""
        try:
            entries = self(LOCATION_QUERY)["workspaceOrError"]["locationEntries"]
        except (httpx.HTTPError, ValueError):
            return False
        for entry in entries:
            location = entry.get("locationOrLoadError") or {}
            if location.get("__typename") == "PythonError":
                raise AssertionError(f"the code location failed to load: {location['message']}")
            if entry["name"] == LOCATION and entry["loadStatus"] == "LOADED":
                return bool(location.get("repositories"))
        return False

    def runs(self) -> list[dict[str, Any]]:
        """Every run of the instance, newest first; ``tags`` as a dict."""
        results = self(RUNS_QUERY)["runsOrError"]["results"]
        return [{**run, "tags": {t["key"]: t["value"] for t in run["tags"]}} for run in results]

    def run_events(self, run_id: str) -> list[dict[str, Any]]:
        """The event log of one run (type and message of each event)."""
        return self(RUN_EVENTS_QUERY, runId=run_id)["logsForRun"]["events"]

    def start_schedule(self, name: str) -> str:
        """Turn the schedule on, as the UI's toggle does; the id of its state."""
        selector = {**_REPOSITORY_SELECTOR, "scheduleName": name}
        result = self(START_SCHEDULE, selector=selector)["startSchedule"]
        assert result["__typename"] == "ScheduleStateResult", result
        return str(result["scheduleState"]["id"])

    def stop_schedule(self, state_id: str) -> None:
        """Turn the schedule off again."""
        self(STOP_SCHEDULE, id=state_id)

    def schedule(self, name: str) -> dict[str, Any]:
        """The schedule as the UI lists it, with its latest ticks."""
        selector = {**_REPOSITORY_SELECTOR, "scheduleName": name}
        return self(SCHEDULE_QUERY, selector=selector)["scheduleOrError"]

    def launch_job_backfill(self, partitions: Sequence[str]) -> str:
        """A backfill of the sync job over ``partitions``, as launched from the job's page."""
        params = {
            "selector": {
                "partitionSetName": f"{SYNC_JOB}_partition_set",
                "repositorySelector": _REPOSITORY_SELECTOR,
            },
            "partitionNames": list(partitions),
        }
        result = self(LAUNCH_BACKFILL, params=params)["launchPartitionBackfill"]
        assert result["__typename"] == "LaunchBackfillSuccess", result
        return str(result["backfillId"])

    def launch_asset_backfill(self, asset_path: Sequence[str], partitions: Sequence[str]) -> str:
        """A backfill of one asset over ``partitions``, as launched from the asset's page (it
        runs as Dagster's own asset job, without the tags of the project's jobs)."""
        selection = [{"path": list(asset_path)}]
        params = {"assetSelection": selection, "partitionNames": list(partitions)}
        result = self(LAUNCH_BACKFILL, params=params)["launchPartitionBackfill"]
        assert result["__typename"] == "LaunchBackfillSuccess", result
        return str(result["backfillId"])

    def backfill(self, backfill_id: str) -> dict[str, Any]:
        return self(BACKFILL_QUERY, id=backfill_id)["partitionBackfillOrError"]

    def launch_sync_run(self, partition: str, run_config: Mapping[str, Any]) -> str:
        """One partition of the sync job, as the UI's "Materialize" launches it (queued)."""
        params = {
            "selector": {**_REPOSITORY_SELECTOR, "pipelineName": SYNC_JOB},
            "runConfigData": dict(run_config),
            "executionMetadata": {"tags": [{"key": "dagster/partition", "value": partition}]},
        }
        result = self(LAUNCH_RUN, params=params)["launchPipelineExecution"]
        assert result["__typename"] == "LaunchRunSuccess", result
        return str(result["run"]["runId"])


def finished_run(graphql: GraphQL, run_id: str) -> dict[str, Any] | None:
    """The run once it has finished (any end status), else None."""
    for run in graphql.runs():
        if run["runId"] == run_id and run["status"] in {"SUCCESS", "FAILURE", "CANCELED"}:
            return run
    return None


def event_types(events: Sequence[Mapping[str, Any]]) -> list[str]:
    return [event["__typename"] for event in events]


def event_time(events: Sequence[Mapping[str, Any]], typename: str) -> float:
    """When the run's first event of type ``typename`` happened (seconds since the epoch)."""
    stamps = [float(e["timestamp"]) / 1000 for e in events if e["__typename"] == typename]
    assert stamps, f"no {typename} in the run's events"
    return min(stamps)


# ----------------------------------------------------------------------------------------------
# PostgreSQL: a throwaway cluster on loopback


def postgres_bin() -> Path | None:
    """The folder of the newest PostgreSQL server binaries (Debian's layout first), if any."""
    debian = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name), reverse=True
    )
    for folder in debian:
        if (folder / "initdb").exists() and (folder / "pg_ctl").exists():
            return folder
    found = shutil.which("pg_ctl")
    return Path(found).parent if found and (Path(found).parent / "initdb").exists() else None


class PostgresServer:
    """A PostgreSQL cluster of its own, in a temporary folder, on 127.0.0.1 and a free port.

    The server refuses to run as root: as root it runs as the ``postgres`` user (created by
    Debian's package), in a folder that user owns. The user's password is really checked
    (scram-sha-256), so the credentials must come through.
    """

    USER = "vis_dagster"
    PASSWORD = "throwaway-test-password"
    DATABASE = "dagster"

    def __init__(self, binaries: Path) -> None:
        self.binaries = binaries
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="vis-postgres-"))
        self.data = self.folder / "data"
        self.log = self.folder / "server.log"
        self._as_user: list[str] = []

    def environment(self) -> dict[str, str]:
        """The variables ``dagster-postgres.yaml`` reads its connection from."""
        return {
            "DAGSTER_PG_USERNAME": self.USER,
            "DAGSTER_PG_PASSWORD": self.PASSWORD,
            "DAGSTER_PG_HOST": "127.0.0.1",
            "DAGSTER_PG_PORT": str(self.port),
            "DAGSTER_PG_DB": self.DATABASE,
        }

    def __enter__(self) -> PostgresServer:
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
            self._as_user = ["runuser", "-u", "postgres", "--"]
        password_file = self.folder / "password"
        password_file.write_text(self.PASSWORD + "\n", encoding="utf-8")
        if self._as_user:
            shutil.chown(password_file, "postgres", "postgres")
        try:
            self._run(
                "initdb",
                "-D",
                str(self.data),
                "-U",
                self.USER,
                "-E",
                "UTF8",
                f"--pwfile={password_file}",
                "--auth=scram-sha-256",
                "--no-sync",
            )
            options = (
                f"-c listen_addresses=127.0.0.1 -p {self.port} -c fsync=off "
                f"-c unix_socket_directories={self.folder}"
            )
            self._run(
                "pg_ctl",
                "-D",
                str(self.data),
                "-l",
                str(self.log),
                "-o",
                options,
                "-w",
                "-t",
                "60",
                "start",
            )
            self._create_database()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "-t", "30", "stop")
        shutil.rmtree(self.folder, ignore_errors=True)

    def _run(self, program: str, *arguments: str) -> None:
        command = [*self._as_user, str(self.binaries / program), *arguments]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{program} failed: {done.stdout}{done.stderr}{log}")

    def connect(self, database: str | None = None) -> Any:
        """A psycopg2 connection (autocommit) to ``database`` (default: Dagster's)."""
        import psycopg2

        connection = psycopg2.connect(
            host="127.0.0.1",
            port=self.port,
            user=self.USER,
            password=self.PASSWORD,
            dbname=database or self.DATABASE,
            connect_timeout=10,
        )
        connection.autocommit = True
        return connection

    def _create_database(self) -> None:
        connection = self.connect("postgres")
        try:
            with connection.cursor() as cursor:
                cursor.execute(f'CREATE DATABASE "{self.DATABASE}"')
        finally:
            connection.close()


# ----------------------------------------------------------------------------------------------
# Headless Chromium

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
    "--window-size=1440,1000",
)
PAGE_BUDGET_MS = 15000
"""Virtual time a page may take to render (its GraphQL answers and React), in milliseconds."""


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@contextmanager
def _profile() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="vis-chromium-") as folder:
        yield Path(folder)


def render_page(browser: str, url: str, screenshot: Path) -> str:
    """The DOM of ``url`` once rendered, and a screenshot of it saved to ``screenshot``."""
    with _profile() as profile:
        done = subprocess.run(
            [
                browser,
                *CHROMIUM_FLAGS,
                f"--user-data-dir={profile}",
                f"--virtual-time-budget={PAGE_BUDGET_MS}",
                f"--screenshot={screenshot}",
                "--dump-dom",
                url,
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert done.returncode == 0, f"chromium failed on {url}: {done.stderr[-2000:]}"
    assert screenshot.exists(), f"chromium wrote no screenshot of {url}"
    return done.stdout
