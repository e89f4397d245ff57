"""The only place where reminder SQL differs between SQLite and PostgreSQL.

- :func:`insert_ignoring_duplicates`: ``INSERT … ON CONFLICT (key) DO NOTHING`` with each
  dialect's own insert construct (the two share the method but not the class).
- :func:`epoch_seconds`: whole seconds since 1970 of a timestamp column, so the planner
  can do date arithmetic with per-row, per-clinic thresholds in plain integer SQL.

Row claiming needs no helper: ``SELECT … FOR UPDATE SKIP LOCKED`` is the PostgreSQL fast
path and the SQLite compiler drops the clause, while the conditional UPDATE stays the real
guard on both.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, ColumnElement
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import QueryableAttribute
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement


def insert_ignoring_duplicates(db: AsyncSession, table: Any, *, key: str) -> Any:
    """An INSERT that silently skips rows whose ``key`` already exists (on both databases)."""
    dialect = db.get_bind().dialect.name
    construct = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return construct(table).on_conflict_do_nothing(index_elements=[key])


class EpochSeconds(FunctionElement[int]):
    """Whole UTC seconds since 1970 of a timestamp, truncated, as a BIGINT."""

    type = BigInteger()
    name = "epoch_seconds"
    inherit_cache = True


def epoch_seconds(value: ColumnElement[Any] | QueryableAttribute[Any]) -> EpochSeconds:
    return EpochSeconds(value)


@compiles(EpochSeconds, "sqlite")
def _epoch_sqlite(element: EpochSeconds, compiler: SQLCompiler, **kw: Any) -> str:
    # Timestamps are stored as UTC text; strftime('%s') reads them as UTC.
    return f"CAST(strftime('%s', {compiler.process(element.clauses, **kw)}) AS INTEGER)"


@compiles(EpochSeconds, "postgresql")
def _epoch_postgresql(element: EpochSeconds, compiler: SQLCompiler, **kw: Any) -> str:
    # FLOOR first: casting numeric to bigint rounds, and SQLite truncates.
    return f"CAST(FLOOR(EXTRACT(EPOCH FROM {compiler.process(element.clauses, **kw)})) AS BIGINT)"
