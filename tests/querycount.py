"""Count SQL statements a block of code sends, to catch N+1 queries."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine


class StatementLog:
    def __init__(self) -> None:
        self.statements: list[str] = []

    @property
    def count(self) -> int:
        return len(self.statements)


@contextmanager
def count_statements(engine: AsyncEngine) -> Iterator[StatementLog]:
    log = StatementLog()

    def _listener(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if (
            not statement.lstrip()
            .upper()
            .startswith(("SAVEPOINT", "RELEASE", "ROLLBACK TO", "BEGIN"))
        ):
            log.statements.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", _listener)
    try:
        yield log
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", _listener)
