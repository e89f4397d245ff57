"""Stopping the sweep scheduler without abandoning work it is in the middle of.

APScheduler 3's asyncio executor *cancels* running coroutine jobs on ``shutdown()``. A
delivery sweep cancelled mid-send leaves its claimed reminders in ``sending`` until the
lease runs out, and then sends them again. So: stop starting jobs, give the running ones
time to finish and record what they did, and only then shut down.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

log = logging.getLogger("tuki")

GRACE_SECONDS = 30.0


async def stop_scheduler(scheduler: Any, *, grace_seconds: float = GRACE_SECONDS) -> None:
    """Pause, wait up to ``grace_seconds`` for running jobs, then shut down."""
    if hasattr(scheduler, "pause"):
        scheduler.pause()
    running = [
        future
        for executor in getattr(scheduler, "_executors", {}).values()
        for future in getattr(executor, "_pending_futures", ())
        if not future.done()
    ]
    if running:
        log.info("waiting up to %.0f s for %d running job(s)", grace_seconds, len(running))
        _done, late = await asyncio.wait(running, timeout=grace_seconds)
        if late:
            log.warning(
                "%d job(s) still running after %.0f s; cancelling", len(late), grace_seconds
            )
    scheduler.shutdown(wait=False)
    await asyncio.sleep(0)  # AsyncIOScheduler shuts down on the loop's next turn
