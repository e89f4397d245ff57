"""Migrations go up to head and back down to base on the database under test, and match the models."""

from __future__ import annotations

import asyncio
import uuid

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

import app.models  # noqa: F401
from app import migrate
from app.db import Base, make_engine
from tests.conftest import _TMP, TEST_DATABASE_URL, make_settings


async def _scratch_database() -> tuple[str, object]:
    """A database of its own, so going down to base cannot disturb the other tests."""
    if TEST_DATABASE_URL.startswith("sqlite"):
        return f"sqlite+aiosqlite:///{_TMP / f'migrations-{uuid.uuid4().hex}.db'}", None
    import asyncpg

    name = f"tuki_migrations_{uuid.uuid4().hex[:10]}"
    base = TEST_DATABASE_URL.replace("postgresql+asyncpg://", "postgresql://")
    admin_url = base.rsplit("/", 1)[0] + "/postgres"
    conn = await asyncpg.connect(admin_url)
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()

    async def drop() -> None:
        conn = await asyncpg.connect(admin_url)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()

    return TEST_DATABASE_URL.rsplit("/", 1)[0] + f"/{name}", drop


async def _tables(url: str) -> set[str]:
    engine = make_engine(make_settings(database_url=url))
    async with engine.connect() as conn:
        names = await conn.run_sync(lambda sync: set(inspect(sync).get_table_names()))
    await engine.dispose()
    return names - {"alembic_version"}


async def _diff(url: str) -> list[object]:
    engine = make_engine(make_settings(database_url=url))
    async with engine.connect() as conn:
        diff = await conn.run_sync(
            lambda sync: compare_metadata(
                MigrationContext.configure(sync, opts={"compare_type": True}), Base.metadata
            )
        )
    await engine.dispose()
    return list(diff)


async def test_upgrade_downgrade_upgrade_and_no_drift():
    url, drop = await _scratch_database()
    try:
        await asyncio.to_thread(migrate.upgrade, url)
        assert await _tables(url) == set(Base.metadata.tables)
        assert await _diff(url) == [], "models and migrations have drifted apart"
        await asyncio.to_thread(migrate.downgrade, url, "base")
        assert await _tables(url) == set()
        await asyncio.to_thread(migrate.upgrade, url)
        assert await _tables(url) == set(Base.metadata.tables)
    finally:
        if drop is not None:
            await drop()  # type: ignore[operator]
