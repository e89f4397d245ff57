"""What the scheduler calls. Each job opens its own transaction, is idempotent, and never raises.

The jobs only trigger sweeps over the reminder table; the rows are the truth, so a job
that runs twice (two schedulers, a restart) costs a few queries and sends nothing twice.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from app.accounts import service as accounts_service
from app.common import idempotency
from app.common.clock import Clock
from app.config import Settings
from app.content.loader import ContentLibrary
from app.db import Database
from app.reminders import planner
from app.reminders.channels import Channels
from app.reminders.deliverer import Deliverer, DeliveryReport

log = logging.getLogger("tuki.reminders")


async def plan_sweep(
    database: Database, *, settings: Settings, clock: Clock, library: ContentLibrary
) -> int:
    """Evaluate every rule once; returns how many reminder rows were added."""
    try:
        async with database.sessionmaker() as db, db.begin():
            report = await planner.plan(db, now=clock.now(), settings=settings, library=library)
    except Exception as exc:
        # APScheduler would only log a warning; say which sweep failed, without data.
        log.error("reminders.plan failed: %s", type(exc).__name__)
        return 0
    if report.planned:
        log.info("reminders.plan added %d reminder(s)", report.planned)
    return report.planned


async def deliver_sweep(
    database: Database, *, settings: Settings, clock: Clock, channels: Channels
) -> DeliveryReport:
    """Send what is due, in batches, until nothing due is left."""
    deliverer = Deliverer(database, settings=settings, channels=channels)
    try:
        report = await deliverer.run(clock.now())
    except Exception as exc:
        log.error("reminders.deliver failed: %s", type(exc).__name__)
        return DeliveryReport()
    if report.claimed or report.released:
        log.info(
            "reminders.deliver claimed=%d sent=%d retried=%d failed=%d cancelled=%d "
            "postponed=%d released=%d",
            report.claimed,
            report.sent,
            report.retried,
            report.failed,
            report.cancelled,
            report.postponed,
            report.released,
        )
    return report


async def _purge(
    database: Database,
    clock: Clock,
    job: str,
    purge: Callable[..., Awaitable[int]],
) -> int:
    """Run one purge in its own transaction; a failure is logged and the next run retries."""
    try:
        async with database.sessionmaker() as db, db.begin():
            return await purge(db, now=clock.now())
    except Exception as exc:
        log.error("%s failed: %s", job, type(exc).__name__)
        return 0


async def purge_sessions_sweep(database: Database, *, clock: Clock) -> int:
    """Delete expired login sessions."""
    return await _purge(database, clock, "sessions.purge", accounts_service.purge_expired_sessions)


async def purge_idempotency_sweep(database: Database, *, clock: Clock) -> int:
    """Delete expired Idempotency-Key records."""
    return await _purge(database, clock, "idempotency.purge", idempotency.purge_expired)


PURGES = {"sessions.purge": purge_sessions_sweep, "idempotency.purge": purge_idempotency_sweep}
"""The hourly purges, by job name (``scheduler.build_scheduler`` adds one job each)."""
