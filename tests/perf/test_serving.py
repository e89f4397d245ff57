"""Production serving defaults: uvicorn on uvloop and httptools, workers and pool from settings."""

from __future__ import annotations

import importlib.util
import os
from typing import Any

import pytest
from typer.testing import CliRunner

from app import cli as cli_module
from app.db import make_engine
from tests.conftest import make_settings

PG_URL = "postgresql+asyncpg://tuki@127.0.0.1:5432/tuki"
SQLITE_URL = "sqlite+aiosqlite:///var/tuki.db"


@pytest.fixture
def uvicorn_calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    import uvicorn

    calls: list[dict[str, Any]] = []

    def fake_run(target: str, **options: Any) -> None:
        calls.append({"target": target, **options})

    monkeypatch.setattr(uvicorn, "run", fake_run)
    return calls


def serve(monkeypatch: pytest.MonkeyPatch, *args: str, **settings: object) -> None:
    monkeypatch.delenv("TUKI_WORKERS", raising=False)
    monkeypatch.setattr(cli_module, "get_settings", lambda: make_settings(**settings))
    result = CliRunner().invoke(cli_module.app, ["serve", *args])
    assert result.exit_code == 0, result.output


def test_serve_runs_uvloop_and_httptools_without_access_log(monkeypatch, uvicorn_calls):
    serve(monkeypatch, database_url=PG_URL, workers=3, host="10.0.0.5", port=9000)
    [call] = uvicorn_calls
    assert call["target"] == "app.asgi:app"
    assert call["loop"] == "uvloop"
    assert call["http"] == "httptools"
    assert call["access_log"] is False
    assert call["workers"] == 3
    assert (call["host"], call["port"]) == ("10.0.0.5", 9000)


def test_uvloop_and_httptools_are_installed():
    assert importlib.util.find_spec("uvloop") is not None
    assert importlib.util.find_spec("httptools") is not None


def test_default_workers_one_per_usable_core_on_postgresql(monkeypatch, uvicorn_calls):
    serve(monkeypatch, database_url=PG_URL)
    assert uvicorn_calls[0]["workers"] == len(os.sched_getaffinity(0))


def test_default_workers_is_one_on_sqlite(monkeypatch, uvicorn_calls):
    serve(monkeypatch, database_url=SQLITE_URL)
    assert uvicorn_calls[0]["workers"] == 1


def test_workers_option_overrides_settings(monkeypatch, uvicorn_calls):
    serve(monkeypatch, "--workers", "5", database_url=PG_URL, workers=2)
    assert uvicorn_calls[0]["workers"] == 5


async def test_make_engine_applies_pool_settings():
    settings = make_settings(
        database_url=PG_URL,
        db_pool_size=7,
        db_max_overflow=3,
        db_pool_recycle_seconds=99,
        db_pool_pre_ping=True,
    )
    engine = make_engine(settings)
    try:
        pool: Any = engine.sync_engine.pool
        assert pool.size() == 7
        assert pool._max_overflow == 3
        assert pool._recycle == 99
        assert pool._pre_ping is True
    finally:
        await engine.dispose()
    engine = make_engine(make_settings(database_url=PG_URL))
    try:
        assert engine.sync_engine.pool._pre_ping is False  # type: ignore[attr-defined]
    finally:
        await engine.dispose()


async def test_served_app_freezes_its_start_up_heap_and_tests_do_not(tmp_path):
    """The served app leaves start-up objects out of every later collection; an app built
    by tests (hundreds per run) must not, or their cycles would never be freed."""
    import gc

    from app.main import GC_YOUNG_THRESHOLD, create_app

    settings = make_settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'heap.db'}")
    before = gc.get_threshold()
    gc.unfreeze()
    try:
        plain = create_app(settings, start_scheduler=False)
        async with plain.router.lifespan_context(plain):
            assert gc.get_freeze_count() == 0
            assert gc.get_threshold() == before
        served = create_app(settings, start_scheduler=False, freeze_heap_on_start=True)
        async with served.router.lifespan_context(served):
            assert gc.get_freeze_count() > 10_000
            assert gc.get_threshold()[0] == GC_YOUNG_THRESHOLD
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


def test_the_uvicorn_entry_point_is_the_frozen_app():
    import ast
    from pathlib import Path

    import app.asgi

    tree = ast.parse(Path(app.asgi.__file__).read_text())
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call)]
    assert any(
        keyword.arg == "freeze_heap_on_start" and getattr(keyword.value, "value", None) is True
        for call in calls
        for keyword in call.keywords
    )
