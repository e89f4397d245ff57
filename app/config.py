"""Service settings, read from the environment (prefix ``TUKI_``) or a ``.env`` file."""

from __future__ import annotations

import os
from datetime import time
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qs, urlsplit

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT_DIR = Path(__file__).resolve().parent.parent

# Placeholders that exist so development works out of the box; production refuses them.
DEFAULT_SECRET_KEY = "dev-only-secret-key-change-me"  # noqa: S105
DEFAULT_ENCRYPTION_KEY = "ZGV2LW9ubHktZW5jcnlwdGlvbi1rZXktY2hhbmdlLW0="
DEFAULT_EXPORT_PSEUDONYM_KEY = "dev-only-export-pseudonym-key-change-me"

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
    # 0 picks the default: one worker per CPU core this process may use on PostgreSQL (each
    # worker is one event loop on one core), one on SQLite (a single writer at a time).
    workers: int = Field(default=0, ge=0, le=64)

    db_pool_size: int = 10
    db_max_overflow: int = 10
    db_pool_recycle_seconds: int = 1800
    # Off: a connection the database dropped fails its one request with 503 + Retry-After
    # and the pool discards every connection as old as it, instead of paying a round trip
    # at every checkout for the rare restart (benchmarks/README.md, scenario A).
    db_pool_pre_ping: bool = False
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
    grams_per_standard_drink: float = Field(default=12.0, gt=0, le=100)
    scheduler_enabled: bool = True
    demo_outbox_dir: Path = ROOT_DIR / "var" / "outbox"

    # Outgoing e-mail: "smtp" sends through the server below; "file" writes .eml files
    # to demo_outbox_dir (demo and development only). Unset: smtp in production, else file.
    email_backend: Literal["smtp", "file"] | None = None
    smtp_host: str = "localhost"
    smtp_port: int = 25
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str = "Tuki <no-reply@tuki.invalid>"
    smtp_starttls: bool = False
    smtp_timeout_seconds: float = 10.0

    # SMS / webhook gateway: JSON POSTs signed with HMAC-SHA256 over "timestamp.body".
    reminder_webhook_url: str | None = None
    reminder_webhook_secret: SecretStr | None = None
    reminder_webhook_timeout_seconds: float = 10.0

    # GET /metrics (Prometheus) answers only to this bearer token; unset, nobody reads it.
    metrics_token: SecretStr | None = None
    # Production insists on TLS to a remote database unless it sits on a private network
    # that only this service reaches (a compose network, a VPC subnet).
    database_network_private: bool = False

    # Therapist inbox. The promise is counted in working days in the clinic's timezone
    # (weekends skipped); two working days is the published norm of routine iCBT services.
    message_max_length: int = Field(default=5000, ge=1, le=50_000)
    response_promise_working_days: int = Field(default=2, ge=1, le=20)
    # "Gone quiet": no patient activity for this many days and no therapist message in the
    # last ``inbox_contact_within_days`` (the standard feedback rhythm is weekly).
    inbox_quiet_after_days: int = Field(default=7, ge=1, le=90)
    inbox_contact_within_days: int = Field(default=7, ge=1, le=90)

    # Default reminder rules; a clinic admin can override them per clinic.
    reminder_inactivity_days: tuple[int, int, int] = (3, 7, 14)
    reminder_max_nudges_per_lapse: int = 5
    reminder_new_module_delay_minutes: int = 60
    reminder_questionnaire_after_hours: int = 24
    reminder_unread_message_hours: int = 24
    reminder_response_promise_hours: int = 48
    reminder_response_warning_hours: int = 8
    reminder_feedback_overdue_days: int = 3
    # Default quiet hours for patients who have not chosen their own (local time).
    reminder_quiet_hours_start: time | None = time(21, 0)
    reminder_quiet_hours_end: time | None = time(8, 0)

    # Sweeps and delivery.
    reminder_plan_interval_seconds: int = 300
    reminder_deliver_interval_seconds: int = 60
    session_purge_interval_minutes: int = 60
    reminder_batch_size: int = 100
    reminder_lease_seconds: int = 300
    reminder_max_attempts: int = 5
    reminder_retry_base_seconds: int = 60
    reminder_retry_max_seconds: int = 3600

    # Adherence status (docs/adherence.md). Defaults follow the weekly feedback rhythm and the
    # 3/7/14-day inactivity reminders: a week without activity is "falling behind", two weeks
    # "inactive" (the dropout-risk alert), four weeks "dropped out". A clinic admin can
    # override them per clinic on the reports page.
    adherence_falling_behind_days: int = Field(default=7, ge=1, le=365)
    adherence_inactive_days: int = Field(default=14, ge=1, le=365)
    adherence_dropout_days: int = Field(default=28, ge=1, le=365)
    # Modules a patient may lag behind the program's even pace before "falling behind".
    adherence_pace_slack_modules: int = Field(default=1, ge=0, le=50)
    # Therapist time is estimated from activity: minutes per written message (routine
    # guided iCBT spends 10-20 minutes per patient-week, about one message a week).
    adherence_minutes_per_message: float = Field(default=12.0, gt=0, le=240)

    # Research exports: pseudonyms are HMAC-SHA256 of the enrollment id under this key, so
    # they are stable for one key and unlinkable across keys. Production refuses the default.
    export_pseudonym_key: SecretStr = SecretStr(DEFAULT_EXPORT_PSEUDONYM_KEY)

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

    @property
    def web_workers(self) -> int:
        """How many uvicorn worker processes ``tuki serve`` starts."""
        if self.workers:
            return self.workers
        if self.is_sqlite:
            return 1
        if hasattr(os, "sched_getaffinity"):
            return max(1, len(os.sched_getaffinity(0)))
        return os.cpu_count() or 1

    @property
    def mail_backend(self) -> Literal["smtp", "file"]:
        if self.email_backend is not None:
            return self.email_backend
        return "smtp" if self.is_production else "file"

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
        if self.export_pseudonym_key.get_secret_value() in ("", DEFAULT_EXPORT_PSEUDONYM_KEY):
            problems.append(
                "TUKI_EXPORT_PSEUDONYM_KEY is the development default; anyone could recompute "
                "the pseudonyms in research exports "
                '(python -c "import secrets; print(secrets.token_urlsafe(32))")'
            )
        if self.email_backend == "file":
            problems.append(
                "TUKI_EMAIL_BACKEND=file writes patients' e-mail to disk; use smtp in production"
            )
        if self.reminder_webhook_url and not (
            self.reminder_webhook_secret and self.reminder_webhook_secret.get_secret_value()
        ):
            problems.append(
                "TUKI_REMINDER_WEBHOOK_URL is set without TUKI_REMINDER_WEBHOOK_SECRET; the gateway "
                "could not tell our requests from forged ones "
                '(python -c "import secrets; print(secrets.token_urlsafe(32))")'
            )
        if not self.secure_cookies:
            problems.append(
                "TUKI_BASE_URL is not https:// (or TUKI_COOKIE_SECURE is false); production "
                "serves over TLS only, with Secure cookies and HSTS"
            )
        if (
            not self.is_sqlite
            and not self.database_network_private
            and not _tls_or_local(self.database_url)
        ):
            problems.append(
                "TUKI_DATABASE_URL reaches a remote PostgreSQL without TLS; add ?ssl=require "
                "(or verify-full), or set TUKI_DATABASE_NETWORK_PRIVATE=true if the database "
                "is reachable only on this service's private network"
            )
        if self.metrics_token is not None and len(self.metrics_token.get_secret_value()) < 24:
            problems.append(
                "TUKI_METRICS_TOKEN is shorter than 24 characters "
                '(python -c "import secrets; print(secrets.token_urlsafe(32))")'
            )
        if problems:
            raise ValueError("Refusing to start in production: " + "; ".join(problems))
        return self


_LOCAL_HOSTS = frozenset({"", "localhost", "127.0.0.1", "::1"})
_TLS_MODES = frozenset({"require", "verify-ca", "verify-full"})


def _tls_or_local(database_url: str) -> bool:
    """A database on this host (or a Unix socket), or one reached over TLS."""
    parts = urlsplit(database_url)
    if (parts.hostname or "") in _LOCAL_HOSTS:
        return True
    query = parse_qs(parts.query)
    modes = {v.lower() for key in ("ssl", "sslmode") for v in query.get(key, [])}
    return bool(modes & _TLS_MODES)


@lru_cache
def get_settings() -> Settings:
    """One settings object per process; tests build their own and pass it to create_app."""
    return Settings()
