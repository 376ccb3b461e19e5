"""SQL kept in ``.sql`` files, loaded by name.

The files live in the repository's ``sql/`` folder and ship inside the package as
``vis_pipeline.sql`` (pyproject.toml maps one onto the other), so they are found through
``importlib.resources`` whether the project runs from a checkout, an editable install or a wheel.

Statements live in files so they can be read, reviewed and run by hand; values are always bound
as parameters (``?`` or ``$name``) by the caller, never pasted into the text.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import PurePosixPath

SQL_PACKAGE = "vis_pipeline.sql"
"""The package whose data are the SQL files (the repository's ``sql/`` folder)."""

SQL_DIR: Traversable = files(SQL_PACKAGE)
"""The folder holding every SQL file, one sub-folder per kind (schema, warehouse, checks...)."""

SQL_SUFFIX = ".sql"
"""File extension of SQL files; names are given without it."""


class UnknownSqlFile(LookupError):
    """A SQL name that names no file (or names one outside the SQL folder)."""


def _checked_name(name: str) -> PurePosixPath:
    """``name`` as a relative path inside the SQL folder, or UnknownSqlFile."""
    if not isinstance(name, str) or not name.strip():
        raise UnknownSqlFile(f"SQL name must be a non-empty string, got {name!r}")
    parts = name.removesuffix(SQL_SUFFIX).split("/")
    # Names are plain folder/file steps, never a way out of (or around) the SQL folder.
    if "\\" in name or any(part in {"", ".", ".."} for part in parts):
        raise UnknownSqlFile(f"SQL name must be relative, like 'warehouse/upsert_events': {name!r}")
    return PurePosixPath(*parts)


@cache
def load_sql(name: str) -> str:
    """The text of the SQL file ``name`` (e.g. ``"warehouse/upsert_events"``), read once."""
    relative = _checked_name(name)
    file = _inside_sql_dir(relative.with_suffix(SQL_SUFFIX))
    if not file.is_file():
        raise UnknownSqlFile(f"no SQL file named {name!r}")
    return file.read_text(encoding="utf-8")


def list_sql(folder: str) -> list[str]:
    """Names (loadable by ``load_sql``) of the SQL files of ``folder``, sorted by file name."""
    relative = _checked_name(folder)
    directory = _inside_sql_dir(relative)
    if not directory.is_dir():
        raise UnknownSqlFile(f"no SQL folder named {folder!r}")
    stems = sorted(
        entry.name.removesuffix(SQL_SUFFIX)
        for entry in directory.iterdir()
        if entry.name.endswith(SQL_SUFFIX) and entry.is_file()
    )
    return [f"{relative.as_posix()}/{stem}" for stem in stems]


def _inside_sql_dir(relative: PurePosixPath) -> Traversable:
    """The resource at ``relative`` in the SQL folder, joined one step at a time: some
    Traversables (Python 3.11's namespace-package paths) take a single step per call."""
    resource = SQL_DIR
    for part in relative.parts:
        resource = resource.joinpath(part)
    return resource
