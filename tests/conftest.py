"""Test harness: real migrations, one rolled-back transaction per test, the real app over ASGI.

Runs on SQLite by default; set TUKI_TEST_DATABASE_URL to run the same suite on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from app import migrate
from app.common.clock import FrozenClock
from app.config import Settings
from app.db import Database, make_engine
from app.main import create_app

_TMP = Path(tempfile.mkdtemp(prefix="tuki-test-"))
TEST_DATABASE_URL = (
    os.environ.get("TUKI_TEST_DATABASE_URL") or f"sqlite+aiosqlite:///{_TMP / 'test.db'}"
)
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def make_settings(**overrides: object) -> Settings:
    values: dict[str, object] = {
        "env": "test",
        "database_url": TEST_DATABASE_URL,
        "base_url": "http://test",
        "require_staff_2fa": False,
        "scheduler_enabled": False,
        "demo_outbox_dir": _TMP / "outbox",
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def settings() -> Settings:
    return make_settings()


@pytest.fixture(scope="session")
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    """Schema built by the migrations themselves, never by create_all."""
    await asyncio.to_thread(migrate.upgrade, settings.database_url)
    engine = make_engine(settings, application_name="tuki.tests")
    yield engine
    await engine.dispose()


@pytest.fixture
async def database(engine: AsyncEngine) -> AsyncIterator[Database]:
    """Everything a test writes, including the app's own commits, is rolled back afterwards."""
    async with engine.connect() as connection:
        transaction = await connection.begin()
        yield Database(engine, bind=connection)
        await transaction.rollback()


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


@pytest.fixture
def app(settings: Settings, database: Database, clock: FrozenClock):  # type: ignore[no-untyped-def]
    return create_app(settings, database=database, clock=clock)


@pytest.fixture
async def db(database: Database) -> AsyncIterator[object]:
    """A session for arranging data and checking results, inside the test's transaction."""
    async with database.sessionmaker() as session:
        yield session


@pytest.fixture
def client_factory(app):  # type: ignore[no-untyped-def]
    clients: list[httpx.AsyncClient] = []

    def make() -> httpx.AsyncClient:
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")
        clients.append(client)
        return client

    return make


@pytest.fixture
async def client(client_factory) -> httpx.AsyncClient:  # type: ignore[no-untyped-def]
    return client_factory()


@pytest.fixture
def gateway():  # type: ignore[no-untyped-def]
    """A local SMS/webhook gateway that verifies our HMAC signature (tests/sinks.py)."""
    from tests.sinks import serve_gateway

    yield from serve_gateway()
