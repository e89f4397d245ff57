"""R10: SIGTERM lets work in flight finish: web requests, and a worker's delivery batch.

A reminder claimed and then abandoned would sit in ``sending`` until its lease ran out
and then go out a second time, so a stopping worker must finish the item it is sending
(and record it) rather than drop it.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import func, select

from app.clinics.models import Patient
from app.common.shutdown import stop_scheduler
from app.inbox.models import Message
from app.reminders.models import Reminder, ReminderPreference
from tests.reliability.harness import (
    PYTHON,
    Server,
    free_port,
    running,
    scratch_url,
    seed,
    session_on,
)

HOLD = 3.0


async def test_sigterm_lets_a_request_in_flight_finish() -> None:
    async with scratch_url() as url:
        seeded = await seed(url)
        async with running(url, failpoints="message.after_audit=sleep(3)") as server:
            async with seeded.client(server, seeded.world.patient_user) as patient:
                request = asyncio.create_task(
                    patient.post(
                        f"/api/v1/enrollments/{seeded.world.enrollment.id}/messages",
                        json={"body": "Sent just as the server was stopping."},
                    )
                )
                await server.reached("message.after_audit")
                server.terminate()
                response = await request
            assert response.status_code == 201, response.text
            # uvicorn re-raises the signal once it has shut down cleanly.
            assert await asyncio.to_thread(server.wait, 30) in (0, -signal.SIGTERM)
            assert "Application shutdown complete." in server.output
        async with session_on(url) as db:
            assert await db.scalar(select(func.count(Message.id))) == 1


class _Gateway(BaseHTTPRequestHandler):
    """An SMS gateway that takes ``HOLD`` seconds to accept each message."""

    received: list[str]
    arrived: threading.Event

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append(self.headers["Idempotency-Key"])
        self.arrived.set()
        time.sleep(HOLD)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return


async def test_sigterm_lets_the_worker_finish_the_reminder_it_is_sending() -> None:
    async with scratch_url() as url:
        seeded = await seed(url)
        now = datetime.now(UTC)
        world = seeded.world
        async with session_on(url) as db:
            patient = await db.get(Patient, world.patient.id)
            assert patient is not None
            patient.phone = "+358 40 765 4321"
            db.add(
                ReminderPreference(
                    enrollment_id=world.enrollment.id,
                    email_enabled=False,
                    sms_enabled=True,
                    weekdays=list(range(7)),
                    quiet_start=None,
                    quiet_end=None,
                )
            )
            db.add(
                Reminder(
                    dedupe_key="shutdown-test:sms",
                    rule="inactivity",
                    period="1",
                    audience="patient",
                    channel="sms",
                    status="pending",
                    clinic_id=world.clinic.id,
                    enrollment_id=world.enrollment.id,
                    recipient_user_id=world.patient_user.id,
                    due_at=now - timedelta(minutes=1),
                    next_attempt_at=now - timedelta(minutes=1),
                )
            )
            await db.commit()

        class Gateway(_Gateway):
            received: list[str] = []
            arrived = threading.Event()

        gateway = ThreadingHTTPServer(("127.0.0.1", 0), Gateway)
        threading.Thread(target=gateway.serve_forever, daemon=True).start()
        env = {
            "TUKI_REMINDER_WEBHOOK_URL": f"http://127.0.0.1:{gateway.server_port}/sms",
            "TUKI_REMINDER_WEBHOOK_SECRET": "gateway-secret",
        }
        worker = Server(url, free_port(), extra_env=env, argv=[PYTHON, "-m", "app.cli", "worker"])
        try:
            assert await asyncio.to_thread(Gateway.arrived.wait, 60), worker.output
            worker.terminate()
            assert await asyncio.to_thread(worker.wait, 30) == 0, worker.output
        finally:
            worker.kill()
            gateway.shutdown()
            gateway.server_close()

        async with session_on(url) as db:
            rows = list(await db.scalars(select(Reminder)))
        assert not [r for r in rows if r.status == "sending"], [
            (r.dedupe_key, r.status) for r in rows
        ]
        [sms] = [r for r in rows if r.dedupe_key == "shutdown-test:sms"]
        assert (sms.status, sms.claimed_by, sms.lease_until) == ("sent", None, None)
        assert Gateway.received == ["shutdown-test:sms"]


async def test_stopping_the_scheduler_waits_for_a_running_sweep() -> None:
    """The web app's lifespan and ``tuki worker`` stop it this way: the sweep is not cancelled."""
    started, finished = asyncio.Event(), asyncio.Event()

    async def sweep() -> None:
        started.set()
        await asyncio.sleep(0.5)
        finished.set()

    scheduler = AsyncIOScheduler(timezone=UTC)
    scheduler.add_job(sweep, "interval", hours=1, next_run_time=datetime.now(UTC))
    scheduler.start()
    await asyncio.wait_for(started.wait(), 30)
    await stop_scheduler(scheduler, grace_seconds=30)
    assert finished.is_set()
    assert not scheduler.running


async def test_a_sweep_that_outlives_the_grace_period_is_cancelled() -> None:
    started = asyncio.Event()

    async def stuck() -> None:
        started.set()
        await asyncio.sleep(3600)

    scheduler = AsyncIOScheduler(timezone=UTC)
    scheduler.add_job(stuck, "interval", hours=1, next_run_time=datetime.now(UTC))
    scheduler.start()
    await asyncio.wait_for(started.wait(), 30)
    began = time.monotonic()
    await stop_scheduler(scheduler, grace_seconds=0.2)
    assert time.monotonic() - began < 5
    assert not scheduler.running
