"""Browser tests: the real app under uvicorn, driven by Debian's Chromium through Playwright.

The server runs in a subprocess on a free port against its own freshly migrated SQLite file
with the demo clinic loaded, so these tests see exactly what a person using ``make run`` sees.
Without Chromium (``/usr/bin/chromium`` or ``TUKI_CHROMIUM``) every test here is skipped.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.processes import demo_server

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


@pytest.fixture(scope="session")
def live_server() -> Iterator[str]:
    """Base URL of a uvicorn process serving the demo clinic."""
    if not chromium_available():
        pytest.skip(MISSING_CHROMIUM)
    tmp = Path(tempfile.mkdtemp(prefix="tuki-e2e-"))
    try:
        with demo_server(tmp, f"sqlite+aiosqlite:///{tmp / 'e2e.db'}", ready_path="/login") as url:
            yield url
    finally:
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
