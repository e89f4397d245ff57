"""Async engine, session-per-request unit of work, and the declarative base."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from fastapi import Request
from sqlalchemy import BigInteger, DateTime, Integer, MetaData, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from app.common.clock import as_utc, utc_now
from app.common.errors import AppError
from app.config import Settings

log = logging.getLogger("tuki.db")

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# BIGINT on PostgreSQL, INTEGER on SQLite (where only INTEGER PRIMARY KEY autoincrements).
BigIntId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC on the way in and out, on both databases."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; store timezone-aware UTC")
        return as_utc(value)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return as_utc(value) if value is not None else None


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime()}


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(default=utc_now)


def _install_sqlite_hooks(engine: AsyncEngine, busy_timeout_ms: int) -> None:
    """Enforce foreign keys, WAL and real BEGINs so savepoints and isolation behave on SQLite."""

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(settings: Settings, *, application_name: str = "tuki.web") -> AsyncEngine:
    """One engine factory for the app, the CLI, migrations and tests, so every path gets the same hooks."""
    url = settings.database_url
    if url.startswith("sqlite"):
        engine = create_async_engine(
            url, connect_args={"timeout": settings.sqlite_busy_timeout_ms / 1000}
        )
        _install_sqlite_hooks(engine, settings.sqlite_busy_timeout_ms)
        return engine
    return create_async_engine(
        url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_recycle=settings.db_pool_recycle_seconds,
        pool_pre_ping=settings.db_pool_pre_ping,
        connect_args={"server_settings": {"application_name": application_name}},
    )


class Database:
    """The engine and session factory a process uses; tests bind the factory to one connection."""

    def __init__(self, engine: AsyncEngine, *, bind: AsyncConnection | None = None) -> None:
        self.engine = engine
        # SQLite has one write lock, and every transaction takes it (BEGIN IMMEDIATE). Its
        # busy handler polls, so under many writers one can starve past busy_timeout and
        # fail with "database is locked". Requests of this process queue here instead, in
        # arrival order; busy_timeout is left for other processes (a worker, the CLI).
        self.write_gate: asyncio.Lock | None = (
            asyncio.Lock() if engine.dialect.name == "sqlite" else None
        )
        if bind is not None:
            self.sessionmaker = async_sessionmaker(
                bind=bind, expire_on_commit=False, join_transaction_mode="create_savepoint"
            )
        else:
            self.sessionmaker = async_sessionmaker(engine, expire_on_commit=False)

    async def dispose(self) -> None:
        await self.engine.dispose()


async def get_db(request: Request) -> AsyncIterator[AsyncSession]:
    """One unit of work per request: commit before the response goes out, roll back on error.

    Declared with ``Depends(get_db, scope="function")`` so a failed commit is an error
    response rather than a success that silently lost the patient's data.
    """
    database: Database = request.app.state.db
    gate = database.write_gate or contextlib.nullcontext()
    async with gate, database.sessionmaker() as session:
        try:
            yield session
            await session.commit()
        except AppError as exc:
            if exc.commit_anyway:
                await session.commit()
            else:
                await session.rollback()
            raise
        except BaseException:
            await _rollback_quietly(session)
            raise


async def _rollback_quietly(session: AsyncSession) -> None:
    """Roll back, but let the original error through when the connection is already gone."""
    try:
        await session.rollback()
    except Exception as exc:
        log.warning("rollback after a failed request also failed: %s", type(exc).__name__)


def is_transient(exc: BaseException) -> bool:
    """A database error a retry may cure: lost connection, lock timeout, pool exhausted.

    These answer 503 with Retry-After instead of 500: the unit of work was rolled back,
    so nothing of the request is kept and retrying it is safe.
    """
    if isinstance(exc, sa_exc.DBAPIError):
        sqlstate = str(getattr(exc.orig, "sqlstate", None) or "")
        return (
            exc.connection_invalidated
            or isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError)
            or sqlstate.startswith(_TRANSIENT_SQLSTATES)
        )
    return isinstance(exc, sa_exc.TimeoutError | ConnectionError)


# PostgreSQL: connection exceptions, administrator shutdown or restart, serialization
# failure, deadlock, lock not available, too many connections.
_TRANSIENT_SQLSTATES = ("08", "57P", "40001", "40P01", "55P03", "53300")


class AppendOnlyError(RuntimeError):
    """Raised when code tries to change or remove a row of an append-only table."""


def append_only(model: type[Base]) -> None:
    """Refuse ORM updates and deletes of ``model`` rows; the database triggers back this up."""

    def refuse(_mapper: Any, _connection: Any, target: Any) -> None:
        raise AppendOnlyError(f"{type(target).__name__} rows are append-only")

    event.listen(model, "before_update", refuse)
    event.listen(model, "before_delete", refuse)
