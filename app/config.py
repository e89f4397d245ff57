"""Service settings, read from the environment (prefix ``TUKI_``) or a ``.env`` file."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT_DIR = Path(__file__).resolve().parent.parent

# Placeholders that exist so development works out of the box; production refuses them.
DEFAULT_SECRET_KEY = "dev-only-secret-key-change-me"  # noqa: S105
DEFAULT_ENCRYPTION_KEY = "ZGV2LW9ubHktZW5jcnlwdGlvbi1rZXktY2hhbmdlLW0="

Environment = Literal["development", "demo", "test", "production"]


class Settings(BaseSettings):
    """Every knob a clinic can turn; see the configuration table in README.md."""

    model_config = SettingsConfigDict(
        env_prefix="TUKI_", env_file=".env", env_ignore_empty=True, extra="ignore"
    )

    env: Environment = "development"
    database_url: str = f"sqlite+aiosqlite:///{ROOT_DIR / 'var' / 'tuki.db'}"
    secret_key: SecretStr = SecretStr(DEFAULT_SECRET_KEY)
    encryption_keys: SecretStr = Field(
        default=SecretStr(DEFAULT_ENCRYPTION_KEY),
        description="Comma-separated Fernet keys; the first encrypts, all decrypt (rotation).",
    )
    base_url: str = "http://127.0.0.1:8000"
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1

    db_pool_size: int = 10
    db_max_overflow: int = 10
    db_pool_recycle_seconds: int = 1800
    sqlite_busy_timeout_ms: int = 5000

    session_idle_minutes: int = 30
    session_absolute_hours: int = 12
    cookie_secure: bool | None = None
    require_staff_2fa: bool | None = None

    login_max_failures_per_account: int = 5
    login_max_failures_per_address: int = 30
    login_failure_window_minutes: int = 15
    login_lock_minutes: int = 15

    invitation_valid_days: int = 7
    password_min_length: int = 10

    content_dir: Path = ROOT_DIR / "modules"
    content_overlay: Path | None = None
    scheduler_enabled: bool = True
    demo_outbox_dir: Path = ROOT_DIR / "var" / "outbox"

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def staff_2fa_required(self) -> bool:
        """Two-factor is required for staff in production unless explicitly turned off."""
        if self.require_staff_2fa is not None:
            return self.require_staff_2fa
        return self.env == "production"

    @property
    def secure_cookies(self) -> bool:
        if self.cookie_secure is not None:
            return self.cookie_secure
        return self.base_url.startswith("https://")

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> Settings:
        if not self.is_production:
            return self
        problems = []
        if self.secret_key.get_secret_value() == DEFAULT_SECRET_KEY:
            problems.append(
                "TUKI_SECRET_KEY is the development default; set a long random value "
                '(python -c "import secrets; print(secrets.token_urlsafe(48))")'
            )
        if DEFAULT_ENCRYPTION_KEY in self.encryption_keys.get_secret_value().split(","):
            problems.append(
                "TUKI_ENCRYPTION_KEYS contains the development key; set a Fernet key "
                '(python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())")'
            )
        if self.is_sqlite:
            problems.append(
                "TUKI_DATABASE_URL points at SQLite; production needs PostgreSQL "
                "(postgresql+asyncpg://user:password@host:5432/tuki)"
            )
        if problems:
            raise ValueError("Refusing to start in production: " + "; ".join(problems))
        return self


@lru_cache
def get_settings() -> Settings:
    """One settings object per process; tests build their own and pass it to create_app."""
    return Settings()
