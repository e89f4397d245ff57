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
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.processes import demo_server

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


@pytest.fixture(scope="module")
def fuzz_server() -> Iterator[LiveServer]:
    tmp = Path(tempfile.mkdtemp(prefix="tuki-fuzz-"))
    with _server_database(tmp) as database_url:
        yield from _serve(tmp, database_url)


def _serve(tmp: Path, database_url: str) -> Iterator[LiveServer]:
    try:
        with demo_server(tmp, database_url) as base_url:
            yield LiveServer(base_url, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # type: ignore[no-untyped-def]
    for role, summary in config.stash.get(CASES_KEY, {}).items():
        terminalreporter.write_line(f"schemathesis as {role}: {summary}")
