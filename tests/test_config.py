"""Production refuses to start with development secrets or SQLite, and says what to set."""

from __future__ import annotations

import httpx
import pytest
from pydantic import ValidationError

from app.config import Settings
from app.main import create_app

GOOD_KEY = "xO0l3dY0yV1fW4nR9bK2pQ7sT5uZ8aC6eG1hJ3kL5mN="


def test_production_with_defaults_is_refused_with_every_reason():
    with pytest.raises(ValidationError) as caught:
        Settings(env="production", database_url="sqlite+aiosqlite:///x.db")
    message = str(caught.value)
    assert "TUKI_SECRET_KEY" in message
    assert "TUKI_ENCRYPTION_KEYS" in message
    assert "TUKI_DATABASE_URL" in message and "PostgreSQL" in message
    assert "TUKI_EXPORT_PSEUDONYM_KEY" in message


def test_production_with_real_settings_starts():
    settings = Settings(
        env="production",
        secret_key="s" * 48,
        encryption_keys=GOOD_KEY,
        database_url="postgresql+asyncpg://tuki@db.internal:5432/tuki?ssl=require",
        base_url="https://tuki.example.org",
        export_pseudonym_key="p" * 32,
    )
    assert settings.staff_2fa_required is True
    assert settings.secure_cookies is True


def test_development_defaults_are_relaxed():
    settings = Settings(env="demo")
    assert settings.staff_2fa_required is False
    assert settings.secure_cookies is False
    assert settings.is_sqlite


def test_secure_cookie_uses_host_prefix():
    from app.accounts.dependencies import session_cookie_name

    assert (
        session_cookie_name(Settings(env="demo", base_url="https://x.example"))
        == "__Host-tuki_session"
    )
    assert session_cookie_name(Settings(env="demo")) == "tuki_session"


def _production(**overrides: object) -> Settings:
    values: dict[str, object] = {
        "env": "production",
        "secret_key": "s" * 48,
        "encryption_keys": GOOD_KEY,
        "database_url": "postgresql+asyncpg://tuki@127.0.0.1:5432/tuki",
        "base_url": "https://tuki.example.org",
        "export_pseudonym_key": "p" * 32,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("overrides", "variable"),
    [
        ({"base_url": "http://tuki.example.org"}, "TUKI_BASE_URL"),
        ({"cookie_secure": False}, "TUKI_COOKIE_SECURE"),
        ({"database_url": "postgresql+asyncpg://tuki@db.example.org/tuki"}, "TLS"),
        ({"database_url": "postgresql+asyncpg://tuki@db.example.org/tuki?ssl=prefer"}, "TLS"),
        ({"metrics_token": "short"}, "TUKI_METRICS_TOKEN"),
    ],
)
def test_production_refuses_plaintext_and_weak_operator_settings(overrides, variable):
    with pytest.raises(ValidationError) as caught:
        _production(**overrides)
    assert variable in str(caught.value)


@pytest.mark.parametrize(
    "database_url",
    [
        "postgresql+asyncpg://tuki@db.example.org/tuki?ssl=require",
        "postgresql+asyncpg://tuki@db.example.org/tuki?sslmode=verify-full",
        "postgresql+asyncpg://tuki@localhost/tuki",
    ],
)
def test_production_accepts_tls_or_a_local_database(database_url):
    assert _production(database_url=database_url).database_url == database_url


def test_a_private_database_network_is_an_explicit_choice():
    plain = "postgresql+asyncpg://tuki:tuki@db:5432/tuki"
    with pytest.raises(ValidationError):
        _production(database_url=plain)
    assert _production(database_url=plain, database_network_private=True).database_network_private


async def test_production_serves_no_docs_schema_or_tracebacks(database, clock):
    app = create_app(_production(), database=database, clock=clock)
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://test")
    for path in ("/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect"):
        assert (await client.get(path)).status_code == 404, path
    development = create_app(_production().model_copy(update={"env": "test"}), database=database)
    dev_client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=development), base_url="https://test"
    )
    assert (await dev_client.get("/openapi.json")).status_code == 200
    assert app.debug is False
