"""What Dagster's run storage says of the syncs: the last one's real outcome, and runs whose
process died.

A run executed by ``vis-pipeline sync`` lives in that command's process. Killed with SIGKILL, it
can write nothing more, so Dagster would show it STARTED for ever; each run carries the host and
process id it runs in, and the next command on that host marks such a run failed. (Runs the
daemon launches are watched by Dagster's own run monitoring, enabled in ``dagster.yaml``.)
"""

from __future__ import annotations

import os
import re
import socket
from dataclasses import dataclass

import dagster as dg

from vis_pipeline.defs.jobs import SYNC_JOB
from vis_pipeline.defs.sensors import innermost_message

PID_TAG = "vis/pid"
"""Run tag: the process id of the command that executes the run in its own process."""

HOST_TAG = "vis/host"
"""Run tag: the host of that process (a process id means nothing elsewhere)."""

IN_FLIGHT = [dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED]

DIED = "the process running it died (killed, or the machine stopped) before it finished"
"""What a run reaped by :func:`fail_dead_runs` is marked failed with."""


@dataclass(frozen=True)
class RunOutcome:
    """The outcome of one run, as status tells it."""

    run_id: str
    status: str
    message: str | None = None

    @property
    def failed(self) -> bool:
        """Whether the run ended without success."""
        return self.status in {"FAILURE", "CANCELED"}


def process_tags() -> dict[str, str]:
    """Tags that let a later command tell whether this process still runs the run."""
    return {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True


def fail_dead_runs(instance: dg.DagsterInstance) -> list[str]:
    """Mark failed every in-flight run of this host whose process is gone; their ids."""
    host = socket.gethostname()
    runs = instance.get_runs(dg.RunsFilter(statuses=IN_FLIGHT, tags={HOST_TAG: host}))
    dead = [run for run in runs if not _alive(int(run.tags.get(PID_TAG, "0") or 0))]
    for run in dead:
        instance.report_run_failed(run, DIED)
    return [run.run_id for run in dead]


def last_sync(instance: dg.DagsterInstance) -> RunOutcome | None:
    """The latest run of the sync job (None when there was none), with its failure message."""
    runs = instance.get_runs(dg.RunsFilter(job_name=SYNC_JOB), limit=1)
    if not runs:
        return None
    run = runs[0]
    message = _failure_message(instance, run.run_id) if run.status.value == "FAILURE" else None
    return RunOutcome(run.run_id, run.status.value, message)


def _failure_message(instance: dg.DagsterInstance, run_id: str) -> str | None:
    """The first line of the run's failure: its failed step's error, else the run's own."""
    records = instance.all_logs(run_id)
    for record in records:
        event = record.dagster_event
        if event is not None and event.is_step_failure:
            error = innermost_message(event.step_failure_data.error)
            return f"{event.step_key}: {first_line(error)}"
    for record in reversed(records):
        event = record.dagster_event
        if event is not None and event.event_type_value == "PIPELINE_FAILURE":
            return first_line(record.message or event.message or "")
    return None


def first_line(text: str) -> str:
    """The first non-blank line of ``text`` (tracebacks and notes follow it), the error's class
    named without its module (``VISRetriesExhausted: ...``)."""
    line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return re.sub(r"^(?:\w+\.)+(\w+: )", r"\1", line)
