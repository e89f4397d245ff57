"""Production refuses to start with development secrets or SQLite, and says what to set."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from app.config import Settings

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
        database_url="postgresql+asyncpg://tuki@db:5432/tuki",
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
