"""Arranging reminder scenarios: plan and deliver at a chosen moment, read the rows back."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, time
from typing import Any

from sqlalchemy import select

from app.clinics.models import Enrollment
from app.config import Settings
from app.content.loader import ContentLibrary
from app.content.service import get_library
from app.db import Database
from app.reminders import planner
from app.reminders.channels import Channels, DeliveryError, Outgoing
from app.reminders.deliverer import Deliverer, DeliveryReport
from app.reminders.models import Notification, Reminder, ReminderPreference
from tests.conftest import _TMP, TEST_DATABASE_URL


def library(settings: Settings) -> ContentLibrary:
    return get_library(settings.content_dir, settings.content_overlay)


async def plan(database: Database, settings: Settings, now: datetime) -> int:
    """One planning run in its own transaction, as the scheduled job does it."""
    async with database.sessionmaker() as db, db.begin():
        report = await planner.plan(db, now=now, settings=settings, library=library(settings))
    return report.planned


async def reminders(
    database: Database, enrollment: Enrollment | None = None, **where: Any
) -> list[Reminder]:
    async with database.sessionmaker() as db:
        stmt = select(Reminder).order_by(Reminder.id)
        if enrollment is not None:
            stmt = stmt.where(Reminder.enrollment_id == enrollment.id)
        for name, value in where.items():
            stmt = stmt.where(getattr(Reminder, name) == value)
        return list(await db.scalars(stmt))


async def notifications(database: Database, user_id: int) -> list[Notification]:
    async with database.sessionmaker() as db:
        return list(
            await db.scalars(
                select(Notification)
                .where(Notification.user_id == user_id)
                .order_by(Notification.id)
            )
        )


class Recorder:
    """A sender that keeps what it was given; it can fail the first ``failures`` calls."""

    def __init__(self, failures: int = 0, *, failing_to: str | None = None) -> None:
        self.sent: list[Outgoing] = []
        self.failures = failures
        self.failing_to = failing_to
        self.calls = 0

    async def send(self, message: Outgoing) -> None:
        await asyncio.sleep(0)  # let a concurrent worker run, as real I/O would
        if self.failing_to is None or message.to == self.failing_to:
            self.calls += 1
            if self.calls <= self.failures:
                raise DeliveryError("test: gateway down")
        self.sent.append(message)


def deliverer(
    database: Database,
    settings: Settings,
    *,
    email: Any = None,
    sms: Any = None,
    worker_id: str | None = None,
    batch_size: int | None = None,
) -> Deliverer:
    return Deliverer(
        database,
        settings=settings,
        channels=Channels(email=email or Recorder(), sms=sms),
        worker_id=worker_id,
        batch_size=batch_size,
    )


async def deliver(
    database: Database, settings: Settings, now: datetime, **kwargs: Any
) -> DeliveryReport:
    return await deliverer(database, settings, **kwargs).run(now)


async def set_preferences(
    db: Any,
    enrollment: Enrollment,
    *,
    email: bool = True,
    sms: bool = False,
    weekdays: list[int] | None = None,
    quiet: tuple[time, time] | None = None,
    paused_until: datetime | None = None,
    program: tuple[int, time] | None = None,
) -> None:
    pref = await db.get(ReminderPreference, enrollment.id)
    if pref is None:
        pref = ReminderPreference(enrollment_id=enrollment.id)
        db.add(pref)
    pref.email_enabled = email
    pref.sms_enabled = sms
    pref.weekdays = weekdays if weekdays is not None else list(range(7))
    pref.quiet_start, pref.quiet_end = quiet if quiet else (None, None)
    pref.paused_until = paused_until
    pref.program_weekday, pref.program_time = program if program else (None, None)
    await db.commit()


async def scratch_database() -> tuple[str, Callable[[], Awaitable[None]] | None]:
    """A database of its own with committed data (for tests that need several connections)."""
    if TEST_DATABASE_URL.startswith("sqlite"):
        return f"sqlite+aiosqlite:///{_TMP / f'reminders-{uuid.uuid4().hex}.db'}", None
    import asyncpg

    name = f"tuki_reminders_{uuid.uuid4().hex[:10]}"
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
