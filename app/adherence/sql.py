"""The only place where adherence SQL differs between SQLite and PostgreSQL.

- :func:`upsert`: ``INSERT … ON CONFLICT (key) DO UPDATE`` with each dialect's own insert
  construct, so the rollup is changed by one atomic statement instead of read-modify-write.
- :func:`json_list_has`: whether a JSON list inside ``detail`` holds a value (used by the
  set-based rebuild; the incremental path reads ``detail`` in Python).
- :func:`lock_for_rebuild`: on PostgreSQL, block concurrent rollup writers while the rollup
  is rebuilt, so no event is counted twice or lost; SQLite writers are already serialised.
- :func:`working_seconds`: seconds between two epoch values with weekends left out, in plain
  integer SQL, so reply medians in working days are computed by the database.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ColumnElement, Integer, Table, case, literal, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from app.reminders.sql import epoch_seconds

__all__ = [
    "business_seconds",
    "epoch_seconds",
    "json_list_has",
    "lock_for_rebuild",
    "upsert",
    "working_seconds",
    "working_seconds_between",
]

DAY = 86_400
WEEK = 7 * DAY
_WORK_WEEK = 5 * DAY
# 1970-01-01 was a Thursday: three days after the Monday that starts its week.
_MONDAY_SHIFT = 3 * DAY


def upsert(
    db: AsyncSession,
    table: Table,
    *,
    key: str,
    values: Mapping[str, Any],
    update: Callable[[Any], Mapping[str, Any]],
) -> Any:
    """``INSERT values ON CONFLICT (key) DO UPDATE SET update(excluded)`` on either database.

    ``update`` gets the ``excluded`` row (the values that would have been inserted) and
    returns SQL expressions, which may refer to the existing row through ``table.c``.
    """
    construct = postgresql.insert if db.get_bind().dialect.name == "postgresql" else sqlite.insert
    stmt = construct(table).values(dict(values))
    return stmt.on_conflict_do_update(index_elements=[key], set_=dict(update(stmt.excluded)))


class JsonListHas(FunctionElement[bool]):
    """``value`` is an element of the JSON list ``column[key]``."""

    type = Boolean()
    name = "json_list_has"
    inherit_cache = True


def json_list_has(column: Any, key: str, value: str) -> JsonListHas:
    return JsonListHas(column, literal(key), literal(value))


@compiles(JsonListHas, "sqlite")
def _json_list_has_sqlite(element: JsonListHas, compiler: SQLCompiler, **kw: Any) -> str:
    column, key, value = (compiler.process(c, **kw) for c in element.clauses)
    # The pieces are compiled SQL (bound parameters), not text from a request.
    return f"EXISTS (SELECT 1 FROM json_each({column}, '$.' || {key}) AS j WHERE j.value = {value})"  # noqa: S608


@compiles(JsonListHas, "postgresql")
def _json_list_has_postgresql(element: JsonListHas, compiler: SQLCompiler, **kw: Any) -> str:
    column, key, value = (compiler.process(c, **kw) for c in element.clauses)
    return (
        f"COALESCE((CAST({column} AS JSONB) -> CAST({key} AS TEXT)) "
        f"@> jsonb_build_array(CAST({value} AS TEXT)), false)"
    )


REBUILD_WORK_MEM = "64MB"


async def lock_for_rebuild(db: AsyncSession, tables: list[str]) -> None:
    """Hold off concurrent ``record()`` calls until the rebuilding transaction commits."""
    if db.get_bind().dialect.name != "postgresql":
        return
    for name in tables:
        await db.execute(text(f'LOCK TABLE "{name}" IN SHARE ROW EXCLUSIVE MODE'))
    # For this one transaction: the sorts and hash tables would spill to disk at the
    # default 4 MB of work_mem; and compiling its few big statements just in time cost
    # more than it saved (about a second of the 2M-event rebuild, benchmarks/README.md).
    await db.execute(text(f"SET LOCAL work_mem = '{REBUILD_WORK_MEM}'"))
    await db.execute(text("SET LOCAL jit = off"))


def _business_clock(epoch: ColumnElement[int], offset_seconds: int) -> ColumnElement[int]:
    """Seconds of Monday-to-Friday time from a fixed Monday up to ``epoch`` (local time)."""
    shifted = epoch + (offset_seconds + _MONDAY_SHIFT)
    into_week = shifted % WEEK
    capped = case((into_week < _WORK_WEEK, into_week), else_=literal(_WORK_WEEK, Integer()))
    return (shifted // WEEK) * _WORK_WEEK + capped


def working_seconds(
    start: ColumnElement[int], end: ColumnElement[int], *, offset_seconds: int
) -> ColumnElement[int]:
    """Working (weekday) seconds from ``start`` to ``end``, both epoch seconds.

    ``offset_seconds`` is the clinic's UTC offset, so weekends follow its calendar. A wait
    that starts on Saturday starts counting on Monday 00:00, the same rule as the inbox's
    response promise.
    """
    return _business_clock(end, offset_seconds) - _business_clock(start, offset_seconds)


def _business_clock_py(epoch: int, offset_seconds: int) -> int:
    shifted = epoch + offset_seconds + _MONDAY_SHIFT
    return (shifted // WEEK) * _WORK_WEEK + min(shifted % WEEK, _WORK_WEEK)


def business_seconds(start: int, end: int, *, offset_seconds: int = 0) -> int:
    """The Python twin of :func:`working_seconds`, over epoch seconds."""
    return _business_clock_py(end, offset_seconds) - _business_clock_py(start, offset_seconds)


def working_seconds_between(start: datetime, end: datetime, *, offset_seconds: int = 0) -> int:
    """The Python twin of :func:`working_seconds`, for tests and single values."""
    return business_seconds(
        int(start.timestamp()), int(end.timestamp()), offset_seconds=offset_seconds
    )
