"""The user directory: names for the users the API cannot name, read from a CSV file.

The API names only the token's own user (``getUser`` is ``/self``), so in every report the other
users of an account would be bare ids. A person who knows the names writes them in a CSV with a
header row holding ``user_id`` and ``name``; every row is checked before anything is written,
and an import replaces the whole directory, so the file stays the one place the names live.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from vis_pipeline.warehouse import replace_user_directory

REQUIRED_COLUMNS = ("user_id", "name")
"""Columns the CSV's header must hold (others are ignored)."""


class DirectoryError(ValueError):
    """A directory file that cannot be imported; the message names the line."""


def read_directory(path: Path) -> dict[int, str]:
    """User id to name, from the CSV at ``path``; DirectoryError on the first bad line."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            return parse_directory(handle, str(path))
    except OSError as exc:
        raise DirectoryError(f"{path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise DirectoryError(f"{path}: not UTF-8 text") from None


def parse_directory(lines: Iterable[str], source: str = "directory") -> dict[int, str]:
    """User id to name, from CSV text whose header names ``user_id`` and ``name``."""
    reader = csv.DictReader(lines)
    header = [name.strip().lower() for name in reader.fieldnames or []]
    missing = [column for column in REQUIRED_COLUMNS if column not in header]
    if missing:
        raise DirectoryError(f"{source}: the header needs the columns {', '.join(missing)}")
    reader.fieldnames = header
    names: dict[int, str] = {}
    for row in reader:
        line = reader.line_num
        user_id = _user_id(row.get("user_id"), f"{source} line {line}")
        name = (row.get("name") or "").strip()
        if not name:
            raise DirectoryError(f"{source} line {line}: user {user_id} has no name")
        if user_id in names:
            raise DirectoryError(f"{source} line {line}: user {user_id} is listed twice")
        names[user_id] = name
    return names


def _user_id(text: str | None, where: str) -> int:
    try:
        return int((text or "").strip())
    except ValueError:
        raise DirectoryError(f"{where}: user_id must be a whole number, got {text!r}") from None


def import_directory(conn: duckdb.DuckDBPyConnection, path: Path) -> int:
    """Replace the warehouse's user directory with the file's; returns how many users."""
    return replace_user_directory(conn, read_directory(path), datetime.now(UTC))
