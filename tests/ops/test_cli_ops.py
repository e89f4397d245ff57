"""The operations commands end to end on a database file of their own."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest
from cryptography.fernet import Fernet
from typer.testing import CliRunner

from app import migrate
from app.cli import app as cli
from app.common.crypto import FieldCipher
from app.config import get_settings
from tests.conftest import START
from tests.ops.helpers import CANARY, seed_database

KEY_A = Fernet.generate_key().decode()
KEY_B = Fernet.generate_key().decode()


@pytest.fixture
def configure(monkeypatch):
    """Point the command's settings at a database and keys, as the environment would."""

    def apply(database_url: str, keys: str) -> None:
        monkeypatch.setenv("TUKI_DATABASE_URL", database_url)
        monkeypatch.setenv("TUKI_ENCRYPTION_KEYS", keys)
        get_settings.cache_clear()

    monkeypatch.setenv("TUKI_ENV", "test")
    yield apply
    get_settings.cache_clear()


def test_rotate_backup_restore_and_retention_commands(tmp_path, configure):
    live = f"sqlite+aiosqlite:///{tmp_path / 'live.db'}"
    migrate.upgrade(live)
    asyncio.run(seed_database(live, START, FieldCipher(KEY_A)))
    runner = CliRunner()

    configure(live, KEY_B)
    refused = runner.invoke(cli, ["keys", "rotate"])
    assert refused.exit_code == 1
    assert "cannot be decrypted" in refused.output and "nothing was changed" in refused.output

    configure(live, f"{KEY_B},{KEY_A}")
    rotated = runner.invoke(cli, ["keys", "rotate"])
    assert rotated.exit_code == 0, rotated.output
    assert "6 value(s) re-encrypted; none is left under an old key." in rotated.output
    again = runner.invoke(cli, ["keys", "rotate"])
    assert again.exit_code == 0 and "0 value(s) re-encrypted" in again.output

    backup_file = tmp_path / "nightly.backup"
    made = runner.invoke(cli, ["backup", str(backup_file)])
    assert made.exit_code == 0, made.output

    fresh = tmp_path / "fresh.db"
    configure(f"sqlite+aiosqlite:///{fresh}", KEY_B)
    declined = runner.invoke(cli, ["restore", str(backup_file)], input="n\n")
    assert declined.exit_code != 0 and not fresh.exists()
    restored = runner.invoke(cli, ["restore", str(backup_file), "--yes"])
    assert restored.exit_code == 0, restored.output
    with sqlite3.connect(fresh) as conn:
        bodies = [row[0] for row in conn.execute("SELECT body_encrypted FROM message")]
    assert [FieldCipher(KEY_B).decrypt(b) for b in bodies] == [
        f"{CANARY} message {n}" for n in range(3)
    ]

    retention = runner.invoke(cli, ["retention", "run"])
    assert retention.exit_code == 0, retention.output
    assert "0 patient(s) and 0 enrollment(s) pseudonymised in 0 clinic(s)" in retention.output
