"""APScheduler only triggers sweeps; jobs never raise; the worker command; settings guards."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.triggers.interval import IntervalTrigger
from pydantic import ValidationError
from sqlalchemy import select
from typer.testing import CliRunner

from app import migrate
from app.cli import app as cli
from app.common.clock import FrozenClock
from app.config import Settings
from app.db import Database, make_engine
from app.main import create_app
from app.reminders import jobs, scheduler
from app.reminders.channels import Channels
from app.reminders.models import Reminder
from tests.conftest import START, make_settings
from tests.factories import build_world
from tests.reminders.helpers import Recorder, library, scratch_database

GOOD_KEY = "xO0l3dY0yV1fW4nR9bK2pQ7sT5uZ8aC6eG1hJ3kL5mN="


class _Broken:
    """A database whose every session fails, like one that went away."""

    def sessionmaker(self) -> object:
        raise ConnectionError("database is down")


class TestScheduler:
    async def test_only_fixed_sweep_jobs_in_memory(self, settings, database, clock):
        built = scheduler.build_scheduler(
            database, settings=settings, clock=clock, library=library(settings)
        )
        built.start(paused=True)  # paused: nothing runs, but the jobs are in their store
        try:
            jobs_by_id = {job.id: job for job in built.get_jobs()}
            assert set(jobs_by_id) == {
                "reminders.plan",
                "reminders.deliver",
                "sessions.purge",
                "idempotency.purge",
                "retention.run",
            }
            assert all(isinstance(j.trigger, IntervalTrigger) for j in jobs_by_id.values())
            assert jobs_by_id["reminders.deliver"].trigger.interval == timedelta(
                seconds=settings.reminder_deliver_interval_seconds
            )
            assert all(j.max_instances == 1 and j.coalesce for j in jobs_by_id.values())
            assert isinstance(built._lookup_jobstore("default"), MemoryJobStore)
        finally:
            built.shutdown(wait=False)

    async def test_jobs_log_and_carry_on_when_the_database_is_down(self, settings, clock, caplog):
        broken = _Broken()
        assert (
            await jobs.plan_sweep(broken, settings=settings, clock=clock, library=library(settings))
            == 0
        )  # type: ignore[arg-type]
        report = await jobs.deliver_sweep(
            broken,  # type: ignore[arg-type]
            settings=settings,
            clock=clock,
            channels=Channels(email=Recorder()),
        )
        assert report.claimed == 0
        assert await jobs.purge_sessions_sweep(broken, clock=clock) == 0  # type: ignore[arg-type]
        assert await jobs.purge_idempotency_sweep(broken, clock=clock) == 0  # type: ignore[arg-type]
        assert "idempotency.purge failed: ConnectionError" in caplog.text
        assert "reminders.plan failed: ConnectionError" in caplog.text
        assert "database is down" not in caplog.text

    async def test_jobs_plan_and_deliver_through_their_own_transactions(
        self, db, database, settings, clock
    ):
        world = await build_world(db, clock.now())
        later = FrozenClock(clock.now() + timedelta(days=3))
        planned = await jobs.plan_sweep(
            database, settings=settings, clock=later, library=library(settings)
        )
        assert planned > 0
        recorder = Recorder()
        report = await jobs.deliver_sweep(
            database, settings=settings, clock=later, channels=Channels(email=recorder)
        )
        assert report.sent > 0
        assert any(m.to == world.patient_user.email for m in recorder.sent)

    async def test_lifespan_starts_and_stops_the_scheduler_only_when_asked(
        self, settings, database, clock, monkeypatch
    ):
        events: list[str] = []

        class FakeScheduler:
            def start(self) -> None:
                events.append("start")

            def shutdown(self, wait: bool = True) -> None:
                events.append(f"shutdown wait={wait}")

        monkeypatch.setattr(scheduler, "build_scheduler", lambda *a, **k: FakeScheduler())
        quiet = create_app(settings, database=database, clock=clock)
        async with quiet.router.lifespan_context(quiet):
            pass
        assert events == []  # the test settings turn it off
        app = create_app(settings, database=database, clock=clock, start_scheduler=True)
        async with app.router.lifespan_context(app):
            assert events == ["start"]
        assert events == ["start", "shutdown wait=False"]


class TestWorkerCommand:
    def test_registered(self):
        result = CliRunner().invoke(cli, ["worker", "--help"])
        assert result.exit_code == 0 and "--once" in result.output

    async def test_once_runs_one_plan_and_one_delivery(self, tmp_path):
        url, drop = await scratch_database()
        try:
            await asyncio.to_thread(migrate.upgrade, url)
            settings = make_settings(database_url=url, demo_outbox_dir=tmp_path / "outbox")
            engine = make_engine(settings)
            async with Database(engine).sessionmaker() as db:
                await build_world(db, START - timedelta(days=3))
            summary = await scheduler.run_worker(settings, once=True)
            assert summary.startswith("planned ")
            async with Database(engine).sessionmaker() as db:
                statuses = set((await db.scalars(select(Reminder.status))).all())
            await engine.dispose()
            assert statuses  # something was planned for the three patients
            assert statuses <= {"sent", "pending"}
        finally:
            if drop is not None:
                await drop()


class TestSettings:
    """Only the reminder settings' own refusals are checked here; other domains add theirs."""

    def _problems(self, **extra: object) -> str:
        try:
            Settings(
                env="production",
                secret_key="s" * 48,
                encryption_keys=GOOD_KEY,
                database_url="postgresql+asyncpg://tuki@db:5432/tuki",
                base_url="https://tuki.example.org",
                **extra,  # type: ignore[arg-type]
            )
        except ValidationError as exc:
            return str(exc)
        return ""

    def test_production_refuses_a_webhook_without_a_secret(self):
        url = "https://sms.example.org/send"
        assert "TUKI_REMINDER_WEBHOOK_SECRET" in self._problems(reminder_webhook_url=url)
        assert "TUKI_REMINDER_WEBHOOK" not in self._problems(
            reminder_webhook_url=url, reminder_webhook_secret="x" * 32
        )
        assert "TUKI_REMINDER_WEBHOOK" not in self._problems()

    def test_production_sends_real_email(self):
        assert Settings.model_construct(env="production").mail_backend == "smtp"
        assert "TUKI_EMAIL_BACKEND" in self._problems(email_backend="file")
        assert "TUKI_EMAIL_BACKEND" not in self._problems(email_backend="smtp")
        assert Settings(env="demo").mail_backend == "file"

    def test_inactivity_steps_from_the_environment(self, monkeypatch):
        monkeypatch.setenv("TUKI_REMINDER_INACTIVITY_DAYS", "[2, 5, 9]")
        assert Settings(env="demo").reminder_inactivity_days == (2, 5, 9)
