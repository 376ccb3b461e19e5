"""The ``.env`` file of the working directory: read as Dagster reads it, written by the demo.

Dagster's commands (``dagster dev``, ``dagster-daemon run``, ``dagster-webserver``) load the
``.env`` of the folder they start in and let its values win over the process environment. The
``vis-pipeline`` command follows the same rule, so the CLI and the UI it opens always agree on
every setting. The demo writes such a file (its simulator's address, its token, its days), so
that the UI reproduces what the demo did; it never writes a file it did not write itself.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

ENV_FILE = ".env"
"""The file's name, in the working directory (Dagster's convention)."""

DEMO_HEADER = "# Written by `vis-pipeline demo`"
"""First line of a file the demo wrote: only such a file may be rewritten by the demo."""

DEMO_NOTE = """\
# It points vis-pipeline and Dagster, started from this folder, at the demo's simulator with
# the simulator's own test token (never a real one). Delete it to use the real API again.
"""


def env_file(folder: Path | None = None) -> Path:
    """The ``.env`` of ``folder`` (default: the working directory)."""
    return (folder if folder is not None else Path.cwd()) / ENV_FILE


def read_env_file(path: Path) -> dict[str, str]:
    """The variables ``path`` sets, parsed as Dagster parses it (python-dotenv); none if absent."""
    from dotenv import dotenv_values

    if not path.is_file():
        return {}
    return {name: value for name, value in dotenv_values(path).items() if value is not None}


def project_environment(
    environ: Mapping[str, str] | None = None, folder: Path | None = None
) -> dict[str, str]:
    """``environ`` (default: the process environment) with the folder's ``.env`` laid over it."""
    base = os.environ if environ is None else environ
    return {**base, **read_env_file(env_file(folder))}


def written_by_demo(path: Path) -> bool:
    """Whether ``path`` is absent or a file the demo wrote (and so may be rewritten)."""
    if not path.exists():
        return True
    with path.open(encoding="utf-8") as handle:
        return handle.readline().startswith(DEMO_HEADER)


def write_demo_env_file(path: Path, variables: Mapping[str, str]) -> None:
    """Write ``variables`` to ``path`` as the demo's file, replacing it at once."""
    lines = [DEMO_HEADER, DEMO_NOTE.rstrip("\n")]
    lines += [f"{name}={_quoted(value)}" for name, value in variables.items()]
    partial = path.with_name(path.name + ".partial")
    partial.write_text("\n".join(lines) + "\n", encoding="utf-8")
    partial.replace(path)


def _quoted(value: str) -> str:
    """``value`` in single quotes, which python-dotenv reads literally but for ``\\`` and ``'``."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
