"""Restore drill (QUALITY.md R8): back up, damage, restore, and prove the data came back intact.

Each drill works on databases of its own: the per-test rolled-back transaction of the other
tests would hide what a backup really contains.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from app import migrate
from app.common.clock import FrozenClock
from app.common.crypto import FieldCipher
from app.db import Database, make_engine
from app.main import create_app
from app.ops import backup as ops_backup
from tests.conftest import START, TEST_DATABASE_URL, make_settings
from tests.factories import login
from tests.ops.helpers import CANARY, Seeded, seed_database, table_digests

KEY = make_settings().encryption_keys.get_secret_value()


async def damage(database_url: str, seeded: Seeded) -> None:
    """What an incident might do: rows deleted, a name overwritten."""
    engine = make_engine(make_settings(database_url=database_url))
    async with engine.begin() as conn:
        await conn.exec_driver_sql("DELETE FROM message")
        await conn.execute(
            text("UPDATE \"user\" SET full_name = 'Overwritten' WHERE id = :id"),
            {"id": seeded.world.admin.id},
        )
    await engine.dispose()


async def smoke(database_url: str, seeded: Seeded) -> None:
    """The restored database serves the app: the patient logs in and reads their thread."""
    settings = make_settings(database_url=database_url)
    database = Database(make_engine(settings))
    app = create_app(settings, database=database, clock=FrozenClock(START))
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test"
        ) as client:
            await login(client, seeded.world.patient_user.email)
            thread = await client.get(f"/api/v1/enrollments/{seeded.world.enrollment.id}/messages")
            assert thread.status_code == 200, thread.text
            assert [m["body"] for m in thread.json()["items"]] == [
                f"{CANARY} message {n}" for n in range(3)
            ]
    finally:
        await database.dispose()


async def assert_logs_stay_append_only(database_url: str) -> None:
    """The restore brought back the triggers too, not just the rows."""
    engine = make_engine(make_settings(database_url=database_url))
    try:
        async with engine.connect() as conn:
            assert await conn.scalar(text("SELECT COUNT(*) FROM audit_event")), "smoke was audited"
            with pytest.raises(DBAPIError, match="append-only"):
                await conn.execute(text("DELETE FROM audit_event"))
    finally:
        await engine.dispose()


async def drill(source_url: str, fresh_url: str, backup_file: Path) -> float:
    """Seed, back up, damage, restore into a fresh database and over the damaged one."""
    await asyncio.to_thread(migrate.upgrade, source_url)
    seeded = await seed_database(source_url, START, FieldCipher(KEY))
    snapshot = await table_digests(source_url)
    assert snapshot["message"][0] == 3 and snapshot["user"][0] == 8

    made = await asyncio.to_thread(ops_backup.backup, source_url, backup_file)
    content = await asyncio.to_thread(backup_file.read_bytes)
    assert made.size_bytes == len(content) > 0
    assert CANARY.encode() not in content, "backups keep PHI encrypted"

    await damage(source_url, seeded)
    assert await table_digests(source_url) != snapshot

    started = time.perf_counter()
    await asyncio.to_thread(ops_backup.restore, backup_file, fresh_url)
    rto = time.perf_counter() - started
    # The drill's recovery time, for benchmarks/README.md (run with -s to see it).
    print(f"\nrestore into a fresh database took {rto:.3f} s ({made.size_bytes} bytes)")  # noqa: T201
    assert await table_digests(fresh_url) == snapshot
    await smoke(fresh_url, seeded)
    await assert_logs_stay_append_only(fresh_url)

    await asyncio.to_thread(ops_backup.restore, backup_file, source_url)
    assert await table_digests(source_url) == snapshot
    return rto


def sqlite_file(url: str) -> str:
    return url.split(":///", 1)[1]


async def test_sqlite_backup_and_restore_drill(tmp_path):
    source = f"sqlite+aiosqlite:///{tmp_path / 'live.db'}"
    fresh = f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
    await drill(source, fresh, tmp_path / "tuki.backup")
    with sqlite3.connect(sqlite_file(fresh)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]


async def test_sqlite_backup_while_a_write_is_in_flight_sees_only_committed_data(tmp_path):
    """The online backup does not wait for, or include, a transaction that is still open."""
    source = f"sqlite+aiosqlite:///{tmp_path / 'live.db'}"
    await asyncio.to_thread(migrate.upgrade, source)
    seeded = await seed_database(source, START, FieldCipher(KEY))
    writer = sqlite3.connect(sqlite_file(source), isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")
        writer.execute(
            "UPDATE user SET full_name = 'Uncommitted' WHERE id = ?", (seeded.world.admin.id,)
        )
        await asyncio.to_thread(ops_backup.backup, source, tmp_path / "during.backup")
        writer.execute("COMMIT")
    finally:
        writer.close()
    with sqlite3.connect(tmp_path / "during.backup") as copy:
        name = copy.execute(
            "SELECT full_name FROM user WHERE id = ?", (seeded.world.admin.id,)
        ).fetchone()
        assert name == (seeded.world.admin.full_name,)
        assert copy.execute("PRAGMA integrity_check").fetchall() == [("ok",)]


def test_restore_refuses_a_damaged_backup_and_keeps_the_database(tmp_path):
    target = tmp_path / "keep.db"
    with sqlite3.connect(target) as conn:
        conn.execute("CREATE TABLE kept (x INTEGER)")
        conn.execute("INSERT INTO kept VALUES (1)")
    broken = tmp_path / "broken.backup"
    broken.write_bytes(b"SQLite format 3\x00" + b"\x00" * 200)
    foreign = tmp_path / "foreign.backup"
    with sqlite3.connect(foreign) as conn:
        conn.execute("CREATE TABLE other (y INTEGER)")
    for bad in (broken, foreign):
        with pytest.raises(ops_backup.BackupError):
            ops_backup.restore(bad, f"sqlite+aiosqlite:///{target}")
    with sqlite3.connect(target) as conn:
        assert conn.execute("SELECT x FROM kept").fetchall() == [(1,)]


@pytest.fixture
async def pg_databases() -> AsyncIterator[tuple[str, str]]:
    """Two scratch PostgreSQL databases, dropped afterwards."""
    if not TEST_DATABASE_URL.startswith("postgresql"):
        pytest.skip("the pg_dump/pg_restore drill needs TUKI_TEST_DATABASE_URL on PostgreSQL")
    import asyncpg

    base = TEST_DATABASE_URL.replace("postgresql+asyncpg://", "postgresql://")
    admin_url = base.rsplit("/", 1)[0] + "/postgres"
    names = [f"tuki_drill_{uuid.uuid4().hex[:10]}" for _ in range(2)]
    conn = await asyncpg.connect(admin_url)
    for name in names:
        await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    try:
        prefix = TEST_DATABASE_URL.rsplit("/", 1)[0]
        yield f"{prefix}/{names[0]}", f"{prefix}/{names[1]}"
    finally:
        conn = await asyncpg.connect(admin_url)
        for name in names:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()


async def test_postgresql_pg_dump_and_pg_restore_drill(pg_databases, tmp_path):
    source, fresh = pg_databases
    await drill(source, fresh, tmp_path / "tuki.dump")
