"""Browser tests: the real app under uvicorn, driven by Debian's Chromium through Playwright.

The server runs in a subprocess on a free port against its own freshly migrated SQLite file
with the demo clinic loaded, so these tests see exactly what a person using ``make run`` sees.
Without Chromium (``/usr/bin/chromium`` or ``TUKI_CHROMIUM``) every test here is skipped.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from tests.processes import die_with_parent

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("TUKI_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

MISSING_CHROMIUM = (
    f"browser tests skipped: Chromium not found at {CHROMIUM} "
    "(install it with `apt-get install -y chromium`, or set TUKI_CHROMIUM)"
)


def chromium_available() -> bool:
    return Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.e2e)
            if not chromium_available():
                item.add_marker(pytest.mark.skip(reason=MISSING_CHROMIUM))


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # type: ignore[no-untyped-def]
    if not chromium_available():
        terminalreporter.write_line(MISSING_CHROMIUM, yellow=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def live_server() -> Iterator[str]:
    """Base URL of a uvicorn process serving the demo clinic."""
    if not chromium_available():
        pytest.skip(MISSING_CHROMIUM)
    tmp = Path(tempfile.mkdtemp(prefix="tuki-e2e-"))
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "TUKI_ENV": "test",
        "TUKI_DATABASE_URL": f"sqlite+aiosqlite:///{tmp / 'e2e.db'}",
        "TUKI_BASE_URL": base_url,
        "TUKI_SCHEDULER_ENABLED": "false",
        "TUKI_REQUIRE_STAFF_2FA": "false",
        "TUKI_DEMO_OUTBOX_DIR": str(tmp / "outbox"),
    }
    env.pop("TUKI_TEST_DATABASE_URL", None)
    tuki = [sys.executable, "-m", "app.cli"]
    for command in (["migrate"], ["demo"]):
        subprocess.run([*tuki, *command], cwd=ROOT, env=env, check=True, capture_output=True)  # noqa: S603
    log = (tmp / "server.log").open("wb")
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
        preexec_fn=die_with_parent,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base_url}/login", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((tmp / "server.log").read_text(errors="replace"))
            time.sleep(0.2)
        yield base_url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="session")
async def browser(live_server: str) -> AsyncIterator[object]:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        await browser.close()


@pytest.fixture
async def context_factory(browser, live_server: str) -> AsyncIterator[object]:  # type: ignore[no-untyped-def]
    """New, isolated browser contexts (one per person); all closed after the test."""
    contexts: list[object] = []

    async def make(**options: object):  # type: ignore[no-untyped-def]
        context = await browser.new_context(base_url=live_server, **options)
        context.set_default_timeout(30_000)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        await context.close()  # type: ignore[attr-defined]


@pytest.fixture
async def page(context_factory):  # type: ignore[no-untyped-def]
    context = await context_factory()
    return await context.new_page()
