"""``tuki backup`` and ``tuki restore``: consistent copies taken while the app keeps serving.

SQLite uses the online backup API, which copies a consistent snapshot page by page
without stopping writers for long. PostgreSQL uses ``pg_dump -Fc`` (one snapshot
transaction) and ``pg_restore --clean --if-exists`` in a single transaction, so a failed
restore leaves the target as it was. Encrypted columns stay encrypted in the backup: keep
TUKI_ENCRYPTION_KEYS somewhere else than the backups, and keep every key a backup needs.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url


class BackupError(Exception):
    """The backup or restore could not be made; the message says why."""


@dataclass(frozen=True)
class Outcome:
    path: Path
    seconds: float
    size_bytes: int


def _sqlite_path(database_url: str) -> Path:
    match = re.match(r"sqlite(?:\+\w+)?:///(.+)", database_url)
    if not match or match.group(1) == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up")
    return Path(match.group(1))


def _integrity_ok(conn: sqlite3.Connection) -> bool:
    try:
        return [row[0] for row in conn.execute("PRAGMA integrity_check")] == ["ok"]
    except sqlite3.DatabaseError:
        return False


def _is_tuki_database(conn: sqlite3.Connection) -> bool:
    found = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"
    ).fetchone()
    return found is not None


def _sqlite_backup(database_url: str, target: Path) -> None:
    source_path = _sqlite_path(database_url)
    if not source_path.exists():
        raise BackupError(f"database file {source_path} does not exist")
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    source = sqlite3.connect(source_path, timeout=30)
    copy = sqlite3.connect(partial)
    try:
        source.backup(copy)
        # A backup file should stand alone, not need a -wal file next to it.
        copy.execute("PRAGMA journal_mode=DELETE")
        if not _integrity_ok(copy):
            raise BackupError("the copy failed PRAGMA integrity_check")
    finally:
        copy.close()
        source.close()
    partial.replace(target)


def _sqlite_restore(source_file: Path, database_url: str) -> None:
    target_path = _sqlite_path(database_url)
    source = sqlite3.connect(f"file:{source_file}?mode=ro", uri=True)
    try:
        if not _integrity_ok(source):
            raise BackupError(f"{source_file} failed PRAGMA integrity_check; nothing restored")
        if not _is_tuki_database(source):
            raise BackupError(f"{source_file} is not a Tuki database; nothing restored")
        target_path.parent.mkdir(parents=True, exist_ok=True)
        target = sqlite3.connect(target_path, timeout=30)
        try:
            source.backup(target)
        finally:
            target.close()
    finally:
        source.close()


def _pg_env(database_url: str) -> tuple[dict[str, str], str]:
    """libpq environment for the URL, so the password never shows up in ``ps``."""
    url = make_url(database_url)
    if not url.database:
        raise BackupError("the PostgreSQL URL names no database")
    env = dict(os.environ)
    for var, value in (
        ("PGHOST", url.host),
        ("PGPORT", str(url.port) if url.port else None),
        ("PGUSER", url.username),
        ("PGPASSWORD", url.password),
        ("PGSSLMODE", url.query.get("sslmode") or url.query.get("ssl")),
    ):
        if isinstance(value, str) and value:
            env[var] = value
    return env, url.database


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BackupError(f"{name} is not installed; install the PostgreSQL client tools")
    return path


def _run(args: list[str], env: dict[str, str]) -> None:
    # Fixed argument lists with resolved tool paths; no shell is involved.
    result = subprocess.run(args, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    if result.returncode != 0:
        raise BackupError(f"{Path(args[0]).name} failed: {result.stderr.strip()[-2000:]}")


def _pg_backup(database_url: str, target: Path) -> None:
    env, dbname = _pg_env(database_url)
    partial = target.with_name(target.name + ".partial")
    _run(
        [_tool("pg_dump"), "--format=custom", "--no-owner", f"--file={partial}", dbname],
        env,
    )
    partial.replace(target)


def _pg_restore(source_file: Path, database_url: str) -> None:
    env, dbname = _pg_env(database_url)
    _run(
        [
            _tool("pg_restore"),
            "--clean",
            "--if-exists",
            "--no-owner",
            "--single-transaction",
            "--exit-on-error",
            f"--dbname={dbname}",
            str(source_file),
        ],
        env,
    )


def backup(database_url: str, target: Path) -> Outcome:
    """Write a consistent copy of the database to ``target`` (replaced only when complete)."""
    started = time.perf_counter()
    target.parent.mkdir(parents=True, exist_ok=True)
    if database_url.startswith("sqlite"):
        _sqlite_backup(database_url, target)
    elif database_url.startswith("postgresql"):
        _pg_backup(database_url, target)
    else:
        raise BackupError(f"unsupported database: {database_url.split(':', 1)[0]}")
    return Outcome(target, time.perf_counter() - started, target.stat().st_size)


def restore(source_file: Path, database_url: str) -> Outcome:
    """Replace the database's contents with the backup in ``source_file``."""
    if not source_file.is_file():
        raise BackupError(f"{source_file} is not a file")
    started = time.perf_counter()
    if database_url.startswith("sqlite"):
        _sqlite_restore(source_file, database_url)
    elif database_url.startswith("postgresql"):
        _pg_restore(source_file, database_url)
    else:
        raise BackupError(f"unsupported database: {database_url.split(':', 1)[0]}")
    return Outcome(source_file, time.perf_counter() - started, source_file.stat().st_size)
