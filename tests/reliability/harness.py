"""Real servers for the reliability tests: a scratch database, uvicorn subprocesses, sessions.

Each test gets a database of its own (an SQLite file, or a PostgreSQL database created and
dropped here), migrated from scratch, so committed data is visible to every process. The
server runs ``python -m uvicorn app.asgi:app`` exactly as in production, configured
through ``TUKI_*`` variables; a test can arm failpoints with ``TUKI_FAILPOINTS``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from app import migrate
from app.accounts import service as accounts_service
from app.accounts.dependencies import session_cookie_name
from app.accounts.models import User
from app.adherence.service import rebuild
from app.audit.models import AuditEvent
from app.clinics.models import Clinic, Enrollment
from app.common.failpoints import MARKER
from app.config import ROOT_DIR, Settings
from app.db import Database, make_engine
from tests.conftest import _TMP, TEST_DATABASE_URL, make_settings
from tests.factories import World, build_world, create_enrollment
from tests.processes import die_with_parent
from tests.security.helpers import snapshot

ON_POSTGRES = TEST_DATABASE_URL.startswith("postgresql")
PYTHON = sys.executable
# Generous: five engineers share two cores, and a cold start imports the whole app.
START_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@asynccontextmanager
async def scratch_url() -> AsyncIterator[str]:
    """A freshly migrated database of its own; dropped (or left in the temp dir) afterwards."""
    if not ON_POSTGRES:
        url = f"sqlite+aiosqlite:///{_TMP / f'reliability-{uuid.uuid4().hex}.db'}"
        await asyncio.to_thread(migrate.upgrade, url)
        yield url
        return
    import asyncpg

    name = f"tuki_rel_{uuid.uuid4().hex[:10]}"
    admin = TEST_DATABASE_URL.replace("postgresql+asyncpg://", "postgresql://").rsplit("/", 1)[0]
    conn = await asyncpg.connect(admin + "/postgres")
    await conn.execute(f'CREATE DATABASE "{name}"')
    await conn.close()
    url = TEST_DATABASE_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        await asyncio.to_thread(migrate.upgrade, url)
        yield url
    finally:
        conn = await asyncpg.connect(admin + "/postgres")
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.close()


class Server:
    """One uvicorn process (or ``argv``, e.g. ``tuki worker``); stdout is read on a thread
    so failpoint markers and log lines can be awaited."""

    def __init__(
        self,
        url: str,
        port: int,
        *,
        failpoints: str = "",
        extra_env: dict[str, str] | None = None,
        uvicorn_args: tuple[str, ...] = (),
        argv: list[str] | None = None,
    ) -> None:
        self.base_url = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            "TUKI_ENV": "test",
            "TUKI_DATABASE_URL": url,
            "TUKI_BASE_URL": self.base_url,
            "TUKI_REQUIRE_STAFF_2FA": "false",
            "TUKI_SCHEDULER_ENABLED": "false",
            "TUKI_DEMO_OUTBOX_DIR": str(_TMP / "outbox"),
            "TUKI_FAILPOINTS": failpoints,
            "PYTHONUNBUFFERED": "1",
            **(extra_env or {}),
        }
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            argv
            or [
                PYTHON,
                "-m",
                "uvicorn",
                "app.asgi:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-access-log",
                *uvicorn_args,
            ],
            cwd=ROOT_DIR,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            preexec_fn=die_with_parent,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    async def ready(self) -> None:
        """Poll /healthz until the app answers (fails with the server's output if it died)."""
        deadline = time.monotonic() + START_TIMEOUT
        async with httpx.AsyncClient(base_url=self.base_url, timeout=5) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise AssertionError(f"server exited at start:\n{self.output}")
                try:
                    if (await client.get("/healthz")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
        raise AssertionError(f"server not ready in {START_TIMEOUT} s:\n{self.output}")

    async def reached(self, name: str, within: float = 30.0) -> None:
        """Wait for the failpoint's marker line."""
        await self.printed(f"{MARKER} {name}", within=within)

    async def printed(self, text: str, within: float = 30.0) -> None:
        """Wait for a line containing ``text``."""

        def wait() -> bool:
            with self._changed:
                return self._changed.wait_for(
                    lambda: any(text in line for line in self.lines), timeout=within
                )

        if not await asyncio.to_thread(wait):
            raise AssertionError(f"{text!r} never printed:\n{self.output}")

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, like a power cut for the process."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def terminate(self) -> None:
        self.process.send_signal(signal.SIGTERM)

    def wait(self, timeout: float = 30.0) -> int:
        return self.process.wait(timeout=timeout)


@asynccontextmanager
async def running(url: str, **options: object) -> AsyncIterator[Server]:
    """A ready server that is always killed afterwards, whatever the test did."""
    server = Server(url, free_port(), **options)  # type: ignore[arg-type]
    try:
        await server.ready()
        yield server
    finally:
        server.kill()


@dataclass
class Seeded:
    url: str
    settings: Settings
    world: World
    tokens: dict[str, tuple[str, str]]  # email -> (session token, CSRF token)

    def client(self, server: Server, user: User, **options: object) -> httpx.AsyncClient:
        """A logged-in client for ``user`` against ``server``."""
        token, csrf = self.tokens[user.email]
        client = httpx.AsyncClient(
            base_url=server.base_url,
            timeout=60,
            headers={"X-CSRF-Token": csrf},
            **options,  # type: ignore[arg-type]
        )
        client.cookies.set(session_cookie_name(self.settings), token)
        return client


async def seed(url: str) -> Seeded:
    """The usual two-clinic world, committed, with a live session for each of its people."""
    settings = make_settings(database_url=url)
    now = datetime.now(UTC)
    database = Database(make_engine(settings, application_name="tuki.tests"))
    tokens: dict[str, tuple[str, str]] = {}
    try:
        async with database.sessionmaker() as db:
            world = await build_world(db, now)
            for user in (world.admin, world.therapist, world.patient_user):
                token, session = await accounts_service.create_session(
                    db,
                    user,
                    settings=settings,
                    now=now,
                    ip_address=None,
                    user_agent=None,
                    mfa_verified=True,
                )
                tokens[user.email] = (token, session.csrf_token)
            await db.commit()
    finally:
        await database.dispose()
    return Seeded(url, settings, world, tokens)


async def add_patients(seeded: Seeded, count: int) -> list[tuple[User, Enrollment]]:
    """More patients of the first clinic's therapist, each with a live session."""
    now = datetime.now(UTC)
    added = []
    async with session_on(seeded.url) as db:
        clinic = await db.get(Clinic, seeded.world.clinic.id)
        therapist = await db.get(User, seeded.world.therapist.id)
        assert clinic is not None and therapist is not None
        for _ in range(count):
            user, _, enrollment = await create_enrollment(db, clinic, therapist, now)
            token, session = await accounts_service.create_session(
                db,
                user,
                settings=seeded.settings,
                now=now,
                ip_address=None,
                user_agent=None,
                mfa_verified=True,
            )
            seeded.tokens[user.email] = (token, session.csrf_token)
            added.append((user, enrollment))
        await db.commit()
    return added


@asynccontextmanager
async def session_on(url: str) -> AsyncIterator[AsyncSession]:
    database = Database(make_engine(make_settings(database_url=url), application_name="tuki.tests"))
    try:
        async with database.sessionmaker() as db:
            yield db
    finally:
        await database.dispose()


async def state(url: str) -> tuple[dict[str, tuple[int, str]], int]:
    """Every table's rows (bookkeeping aside) and the number of audit rows."""
    async with session_on(url) as db:
        return await snapshot(db), int(await db.scalar(select(func.count(AuditEvent.id))) or 0)


async def check_invariants(url: str) -> None:
    """Foreign keys hold, the file is sound, and every rollup equals a recomputation from the log."""
    async with session_on(url) as db:
        if not ON_POSTGRES:
            assert (await db.execute(text("PRAGMA integrity_check"))).scalar() == "ok"
            assert (await db.execute(text("PRAGMA foreign_key_check"))).all() == []
        report = await rebuild(db)
        assert report.drifted == 0, report
        await db.rollback()


def sqlite_path(url: str) -> Path:
    return Path(url.removeprefix("sqlite+aiosqlite:///"))
