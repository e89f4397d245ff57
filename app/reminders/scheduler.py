"""APScheduler 3 set-up: an in-memory job store with fixed sweep jobs, nothing per patient.

APScheduler cannot share a job store between processes, so it holds no state worth
sharing: the jobs only *trigger* the plan and deliver sweeps (and the purges of expired
sessions and Idempotency-Key records, and the daily retention run, app/ops/retention.py),
and the rows decide what is due. Any number of schedulers may run — the web process in
development, one or more ``tuki worker`` processes in production — and the claim step
keeps every reminder to one sender; the retention run claims enrollments the same way.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from app.common.clock import Clock
from app.config import Settings
from app.content.loader import ContentLibrary
from app.content.service import get_library
from app.db import Database, make_engine
from app.ops import retention
from app.reminders import jobs
from app.reminders.channels import Channels, channels_from_settings

log = logging.getLogger("tuki.reminders")


def build_scheduler(
    database: Database,
    *,
    settings: Settings,
    clock: Clock,
    library: ContentLibrary,
    channels: Channels | None = None,
) -> AsyncIOScheduler:
    """A scheduler for the running event loop; call ``start()`` and later ``shutdown()``."""
    channels = channels or channels_from_settings(settings)
    scheduler = AsyncIOScheduler(
        timezone=UTC,
        job_defaults={"coalesce": True, "max_instances": 1},
    )
    first_run = datetime.now(UTC)
    scheduler.add_job(
        jobs.plan_sweep,
        IntervalTrigger(seconds=settings.reminder_plan_interval_seconds, timezone=UTC),
        id="reminders.plan",
        name="reminders.plan",
        replace_existing=True,
        misfire_grace_time=settings.reminder_plan_interval_seconds,
        next_run_time=first_run,
        kwargs={"database": database, "settings": settings, "clock": clock, "library": library},
    )
    scheduler.add_job(
        jobs.deliver_sweep,
        IntervalTrigger(seconds=settings.reminder_deliver_interval_seconds, timezone=UTC),
        id="reminders.deliver",
        name="reminders.deliver",
        replace_existing=True,
        misfire_grace_time=settings.reminder_deliver_interval_seconds,
        next_run_time=first_run,
        kwargs={"database": database, "settings": settings, "clock": clock, "channels": channels},
    )
    for job_id, purge in jobs.PURGES.items():
        scheduler.add_job(
            purge,
            IntervalTrigger(minutes=settings.session_purge_interval_minutes, timezone=UTC),
            id=job_id,
            name=job_id,
            replace_existing=True,
            misfire_grace_time=settings.session_purge_interval_minutes * 60,
            kwargs={"database": database, "clock": clock},
        )
    scheduler.add_job(
        retention.retention_sweep,
        IntervalTrigger(hours=24, timezone=UTC),
        id="retention.run",
        name="retention.run",
        replace_existing=True,
        misfire_grace_time=24 * 3600,
        kwargs={"database": database, "settings": settings, "clock": clock},
    )
    return scheduler


async def run_worker(settings: Settings, *, once: bool = False) -> str:
    """``tuki worker``: run the sweeps until SIGINT/SIGTERM, or one round with ``once``."""
    database = Database(make_engine(settings, application_name="tuki.worker"))
    library = get_library(settings.content_dir, settings.content_overlay)
    clock = Clock()
    try:
        if once:
            channels = channels_from_settings(settings)
            planned = await jobs.plan_sweep(
                database, settings=settings, clock=clock, library=library
            )
            report = await jobs.deliver_sweep(
                database, settings=settings, clock=clock, channels=channels
            )
            return (
                f"planned {planned}, sent {report.sent}, retried {report.retried}, "
                f"failed {report.failed}, cancelled {report.cancelled}, "
                f"postponed {report.postponed}"
            )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        scheduler = build_scheduler(database, settings=settings, clock=clock, library=library)
        scheduler.start()
        log.info("tuki worker started")
        await stop.wait()
        from app.common.shutdown import stop_scheduler

        await stop_scheduler(scheduler)  # lets a sweep in progress finish its batch
        return "stopped"
    finally:
        await database.dispose()
