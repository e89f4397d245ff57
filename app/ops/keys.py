"""Re-encrypting every encrypted column under the first configured key, while the app keeps serving.

The procedure (README "Operations"): put the new key first in TUKI_ENCRYPTION_KEYS and
restart, so new writes use it and old rows still decrypt; run ``tuki keys rotate``; once it
reports nothing left under old keys, the old key can be removed.

Each batch is a short transaction and each row is written only if it still holds the
ciphertext that was read, so a concurrent edit by the app (already under the new key) is
never overwritten. Rows the new key alone can already read are skipped, which makes the
command idempotent and safe to resume after an interruption.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy import Column, Table, select, update

from app.accounts.models import User
from app.db import Database
from app.inbox.models import Message
from app.programs.models import ExerciseResponse
from app.questionnaires.models import RiskAlert

BATCH_SIZE = 500


@dataclass(frozen=True)
class EncryptedColumn:
    table: Table
    column: Column[str]

    @property
    def label(self) -> str:
        return f"{self.table.name}.{self.column.name}"


def _column(model: type, name: str) -> EncryptedColumn:
    table: Table = model.__table__  # type: ignore[attr-defined]
    return EncryptedColumn(table, table.c[name])


ENCRYPTED_COLUMNS: tuple[EncryptedColumn, ...] = (
    _column(Message, "body_encrypted"),
    _column(ExerciseResponse, "data_encrypted"),
    _column(RiskAlert, "action_note_encrypted"),
    _column(User, "totp_secret_encrypted"),
)
"""Every column written with ``FieldCipher.encrypt``; tests/ops checks none is missing."""


class UnreadableCiphertextError(Exception):
    """A stored value that none of the configured keys decrypts; rotating would lose it."""

    def __init__(self, label: str, row_ids: list[int], *, partly_done: bool = False) -> None:
        shown = ", ".join(str(i) for i in row_ids[:10])
        more = f" and {len(row_ids) - 10} more" if len(row_ids) > 10 else ""
        outcome = (
            "values re-encrypted before this one stay readable with the new key"
            if partly_done
            else "nothing was changed"
        )
        super().__init__(
            f"{len(row_ids)} value(s) in {label} (id {shown}{more}) cannot be decrypted with "
            "any configured key. Add the missing old key to TUKI_ENCRYPTION_KEYS (after the "
            f"new one) and run the rotation again; {outcome}."
        )
        self.label = label
        self.row_ids = row_ids


@dataclass
class ColumnReport:
    label: str
    scanned: int = 0
    rotated: int = 0
    current: int = 0
    changed_meanwhile: int = 0


@dataclass
class RotationReport:
    columns: list[ColumnReport] = field(default_factory=list)

    @property
    def rotated(self) -> int:
        return sum(c.rotated for c in self.columns)

    def lines(self) -> list[str]:
        return [
            f"{c.label}: {c.scanned} scanned, {c.rotated} re-encrypted, "
            f"{c.current} already under the new key, {c.changed_meanwhile} changed meanwhile"
            for c in self.columns
        ]


def _fernets(keys: str) -> tuple[Fernet, MultiFernet]:
    parts = [k.strip() for k in keys.split(",") if k.strip()]
    if not parts:
        raise ValueError("at least one encryption key is required")
    fernets = [Fernet(k.encode()) for k in parts]
    return fernets[0], MultiFernet(fernets)


def _is_current(primary: Fernet, value: str) -> bool:
    try:
        primary.decrypt(value.encode())
    except InvalidToken:
        return False
    return True


async def _pages(
    database: Database, target: EncryptedColumn
) -> AsyncIterator[list[tuple[int, str]]]:
    """(id, ciphertext) pairs in id order, one short read transaction per page."""
    table, column = target.table, target.column
    pk = table.c.id
    last = 0
    while True:
        async with database.sessionmaker() as session:
            rows = (
                await session.execute(
                    select(pk, column)
                    .where(pk > last, column.is_not(None))
                    .order_by(pk)
                    .limit(BATCH_SIZE)
                )
            ).all()
        if not rows:
            return
        yield [(int(r[0]), str(r[1])) for r in rows]
        last = int(rows[-1][0])


async def check(database: Database, keys: str) -> dict[str, int]:
    """How many values per column are still under an old key; raises if any is unreadable."""
    primary, multi = _fernets(keys)
    remaining: dict[str, int] = {}
    for target in ENCRYPTED_COLUMNS:
        unreadable: list[int] = []
        old = 0
        async for page in _pages(database, target):
            for row_id, value in page:
                if _is_current(primary, value):
                    continue
                try:
                    multi.decrypt(value.encode())
                except InvalidToken:
                    unreadable.append(row_id)
                    continue
                old += 1
        if unreadable:
            raise UnreadableCiphertextError(target.label, unreadable)
        remaining[target.label] = old
    return remaining


async def rotate(database: Database, keys: str) -> RotationReport:
    """Re-encrypt every value that the first key cannot read yet.

    A read-only check runs first, so a missing old key stops the run before anything is
    written rather than half-way through.
    """
    primary, multi = _fernets(keys)
    await check(database, keys)
    report = RotationReport()
    for target in ENCRYPTED_COLUMNS:
        column_report = ColumnReport(target.label)
        report.columns.append(column_report)
        table, column = target.table, target.column
        async for page in _pages(database, target):
            column_report.scanned += len(page)
            stale = [(i, v) for i, v in page if not _is_current(primary, v)]
            column_report.current += len(page) - len(stale)
            if not stale:
                continue
            async with database.sessionmaker() as session:
                for row_id, value in stale:
                    try:
                        fresh = multi.rotate(value.encode()).decode()
                    except InvalidToken as exc:
                        raise UnreadableCiphertextError(
                            target.label, [row_id], partly_done=True
                        ) from exc
                    result = await session.execute(
                        update(table)
                        .where(table.c.id == row_id, column == value)
                        .values({column.name: fresh})
                    )
                    if result.rowcount == 1:  # type: ignore[attr-defined]
                        column_report.rotated += 1
                    else:
                        column_report.changed_meanwhile += 1
                await session.commit()
    return report


def generate_key() -> str:
    """A fresh Fernet key for TUKI_ENCRYPTION_KEYS."""
    return Fernet.generate_key().decode()
