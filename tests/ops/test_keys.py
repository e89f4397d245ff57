"""Key rotation: every encrypted value ends up under the new key, nothing is lost or exposed."""

from __future__ import annotations

import json

import httpx
import pytest
from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import func, select, text

import app.models  # noqa: F401
from app.common.crypto import FieldCipher
from app.db import Base
from app.main import create_app
from app.ops import keys
from tests.conftest import make_settings
from tests.factories import login
from tests.ops.helpers import CANARY, seed_encrypted

KEY_A = Fernet.generate_key().decode()
KEY_B = Fernet.generate_key().decode()
KEY_C = Fernet.generate_key().decode()


async def raw_values(db) -> dict[str, list[tuple[int, str]]]:
    """Stored ciphertexts read with plain SQL, bypassing the ORM and the cipher."""
    values: dict[str, list[tuple[int, str]]] = {}
    for target in keys.ENCRYPTED_COLUMNS:
        rows = await db.execute(
            text(
                f'SELECT id, {target.column.name} FROM "{target.table.name}" '  # noqa: S608
                f"WHERE {target.column.name} IS NOT NULL ORDER BY id"
            )
        )
        values[target.label] = [(int(r[0]), str(r[1])) for r in rows]
    return values


async def row_counts(db) -> dict[str, int]:
    return {
        t.name: int(await db.scalar(select(func.count()).select_from(t)) or 0)
        for t in Base.metadata.sorted_tables
    }


def test_every_encrypted_column_is_rotated():
    """A new ``*_encrypted`` column that rotation skipped would stay readable only by old keys."""
    declared = {
        f"{table.name}.{column.name}"
        for table in Base.metadata.sorted_tables
        for column in table.columns
        if column.name.endswith("_encrypted")
    }
    assert declared == {target.label for target in keys.ENCRYPTED_COLUMNS}


async def test_rotate_moves_everything_to_the_new_key(db, database, clock, monkeypatch):
    monkeypatch.setattr(keys, "BATCH_SIZE", 2)  # several batches per column
    seeded = await seed_encrypted(db, clock.now(), FieldCipher(KEY_A), messages=5)
    counts = await row_counts(db)
    before = await raw_values(db)
    assert sum(len(v) for v in before.values()) == 5 + 1 + 1 + 1

    report = await keys.rotate(database, f"{KEY_B},{KEY_A}")

    assert report.rotated == 8
    assert {c.label: c.rotated for c in report.columns} == {
        "message.body_encrypted": 5,
        "exercise_response.data_encrypted": 1,
        "risk_alert.action_note_encrypted": 1,
        "user.totp_secret_encrypted": 1,
    }
    after = await raw_values(db)
    assert await row_counts(db) == counts
    only_b, only_a = Fernet(KEY_B.encode()), Fernet(KEY_A.encode())
    for label, rows in after.items():
        assert [i for i, _ in rows] == [i for i, _ in before[label]], label
        for _, value in rows:
            assert CANARY not in value
            only_b.decrypt(value.encode())
            with pytest.raises(InvalidToken):
                only_a.decrypt(value.encode())
    plain = {
        label: [FieldCipher(KEY_A).decrypt(v) for _, v in rows] for label, rows in before.items()
    }
    assert plain == {
        label: [FieldCipher(KEY_B).decrypt(v) for _, v in rows] for label, rows in after.items()
    }
    assert await keys.check(database, KEY_B) == dict.fromkeys(plain, 0)

    # Running it again finds nothing to do and writes nothing.
    again = await keys.rotate(database, f"{KEY_B},{KEY_A}")
    assert again.rotated == 0 and sum(c.current for c in again.columns) == 8
    assert await raw_values(db) == after

    # The app, now configured with the new key alone, still reads everything.
    app = create_app(make_settings(encryption_keys=KEY_B), database=database, clock=clock)
    patient = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")
    async with patient:
        await login(patient, seeded.world.patient_user.email)
        thread = await patient.get(f"/api/v1/enrollments/{seeded.world.enrollment.id}/messages")
        assert thread.status_code == 200, thread.text
        assert [m["body"] for m in thread.json()["items"]] == [
            f"{CANARY} message {n}" for n in range(5)
        ]
    answer = FieldCipher(KEY_B).decrypt(after["exercise_response.data_encrypted"][0][1])
    assert json.loads(answer) == {"answer": CANARY}


async def test_rotate_with_a_missing_old_key_fails_and_changes_nothing(db, database, clock):
    await seed_encrypted(db, clock.now(), FieldCipher(KEY_A))
    # One message written under a key that is not configured for the rotation.
    await db.execute(
        text("UPDATE message SET body_encrypted = :v WHERE id = (SELECT MAX(id) FROM message)"),
        {"v": FieldCipher(KEY_C).encrypt("written under C")},
    )
    await db.commit()
    before = await raw_values(db)

    with pytest.raises(keys.UnreadableCiphertextError) as failure:
        await keys.rotate(database, f"{KEY_B},{KEY_A}")

    assert "message.body_encrypted" in str(failure.value)
    assert "nothing was changed" in str(failure.value)
    assert await raw_values(db) == before


async def test_a_value_the_app_rewrites_during_rotation_is_kept(db, database, clock, monkeypatch):
    """The app edits a row between the rotation's read and its write: the edit wins."""
    seeded = await seed_encrypted(db, clock.now(), FieldCipher(KEY_A), messages=2)
    edited = FieldCipher(f"{KEY_B},{KEY_A}").encrypt("edited by the app meanwhile")
    real_pages = keys._pages
    message_scans: list[str] = []

    async def pages_with_a_concurrent_edit(database, target):
        if target.label == "message.body_encrypted":
            message_scans.append(target.label)
        async for page in real_pages(database, target):
            # The first scan is the read-only check; the edit lands during the rewriting one.
            if len(message_scans) == 2 and target.label == "message.body_encrypted":
                async with database.sessionmaker() as other:
                    await other.execute(
                        text("UPDATE message SET body_encrypted = :v WHERE id = :id"),
                        {"v": edited, "id": seeded.message_id},
                    )
                    await other.commit()
            yield page

    monkeypatch.setattr(keys, "_pages", pages_with_a_concurrent_edit)
    report = await keys.rotate(database, f"{KEY_B},{KEY_A}")

    messages = next(c for c in report.columns if c.label == "message.body_encrypted")
    assert (messages.rotated, messages.changed_meanwhile) == (1, 1)
    stored = await db.scalar(
        text("SELECT body_encrypted FROM message WHERE id = :id"), {"id": seeded.message_id}
    )
    assert stored == edited
    assert FieldCipher(KEY_B).decrypt(stored) == "edited by the app meanwhile"
