"""A real server for the API fuzz run: uvicorn in a subprocess on its own demo database.

The server gets a freshly migrated database with the demo clinic loaded, exactly what
``make run`` serves, so the fuzzer meets real rows, real sessions and real CSRF checks. It
is an SQLite file, or, when the suite runs on PostgreSQL (``TUKI_TEST_DATABASE_URL``), a
new database beside the suite's on the same server, dropped afterwards.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]

# Generated cases per role, for the summary at the end of the run.
CASES_KEY = pytest.StashKey[dict[str, str]]()


@dataclass(frozen=True)
class LiveServer:
    base_url: str
    workdir: Path


async def _pg_admin(url: str, statement: str) -> None:
    """Run CREATE/DROP DATABASE on the server of ``url``, from its ``postgres`` database."""
    import asyncpg

    parts = urlsplit(url.replace("postgresql+asyncpg://", "postgresql://", 1))
    connection = await asyncpg.connect(urlunsplit(parts._replace(path="/postgres")))
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@contextmanager
def _server_database(tmp: Path) -> Iterator[str]:
    suite_url = os.environ.get("TUKI_TEST_DATABASE_URL", "")
    if not suite_url.startswith("postgresql"):
        yield f"sqlite+aiosqlite:///{tmp / 'fuzz.db'}"
        return
    name = f"tuki_fuzz_{secrets.token_hex(4)}"
    asyncio.run(_pg_admin(suite_url, f'CREATE DATABASE "{name}"'))
    try:
        yield urlunsplit(urlsplit(suite_url)._replace(path=f"/{name}"))
    finally:
        asyncio.run(_pg_admin(suite_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def fuzz_server() -> Iterator[LiveServer]:
    tmp = Path(tempfile.mkdtemp(prefix="tuki-fuzz-"))
    with _server_database(tmp) as database_url:
        yield from _serve(tmp, database_url)


def _serve(tmp: Path, database_url: str) -> Iterator[LiveServer]:
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "TUKI_ENV": "test",
        "TUKI_DATABASE_URL": database_url,
        "TUKI_BASE_URL": base_url,
        "TUKI_SCHEDULER_ENABLED": "false",
        "TUKI_REQUIRE_STAFF_2FA": "false",
        "TUKI_DEMO_OUTBOX_DIR": str(tmp / "outbox"),
    }
    env.pop("TUKI_TEST_DATABASE_URL", None)
    tuki = [sys.executable, "-m", "app.cli"]
    for command in (["migrate"], ["demo"]):
        subprocess.run([*tuki, *command], cwd=ROOT, env=env, check=True, capture_output=True)  # noqa: S603
    log_path = tmp / "server.log"
    log = log_path.open("wb")
    server = subprocess.Popen(  # noqa: S603
        [
            sys.executable,
            "-m",
            "uvicorn",
            "app.asgi:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base_url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(log_path.read_text(errors="replace"))
            time.sleep(0.2)
        yield LiveServer(base_url, tmp)
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # type: ignore[no-untyped-def]
    for role, summary in config.stash.get(CASES_KEY, {}).items():
        terminalreporter.write_line(f"schemathesis as {role}: {summary}")
