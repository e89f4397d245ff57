"""Idempotency-Key support for POSTs that create things: a retry gets the first answer."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from typing import Any

from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from app.common.clock import utc_now
from app.common.errors import Conflict, Invalid
from app.common.idempotency_models import IdempotencyRecord

HEADER = "Idempotency-Key"
# Clients retry within seconds or minutes; a day is the usual promise (and lets keys be pruned).
KEY_LIFETIME = timedelta(hours=24)


def fingerprint(method: str, path: str, body: Any) -> str:
    payload = json.dumps(jsonable_encoder(body), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(f"{method} {path} {payload}".encode()).hexdigest()


async def replay(
    db: AsyncSession,
    *,
    user_id: int,
    key: str | None,
    request_fingerprint: str,
    now: datetime | None = None,
) -> JSONResponse | None:
    """The stored answer for this key, or None if it is new (or its record has expired).

    A record older than :data:`KEY_LIFETIME` is removed, so the key works as a new one.
    """
    if not key:
        return None
    if len(key) > 200:
        raise Invalid("Idempotency-Key must be at most 200 characters.", field=HEADER)
    record = await db.scalar(
        select(IdempotencyRecord).where(
            IdempotencyRecord.user_id == user_id, IdempotencyRecord.key == key
        )
    )
    if record is None:
        return None
    if record.created_at <= (now or utc_now()) - KEY_LIFETIME:
        await db.delete(record)
        await db.flush()
        return None
    if record.request_fingerprint != request_fingerprint:
        raise Invalid(
            "This Idempotency-Key was already used for a different request.",
            field=HEADER,
            code="idempotency_mismatch",
        )
    return JSONResponse(
        record.response_body,
        status_code=record.status_code,
        headers={"Idempotent-Replayed": "true"},
    )


async def remember(
    db: AsyncSession,
    *,
    user_id: int,
    key: str | None,
    request_fingerprint: str,
    status_code: int,
    body: Any,
    now: datetime | None = None,
) -> None:
    """Store the answer in the same transaction as the work, so both commit or neither does.

    Two requests with one key that both got past :func:`replay` meet here: the unique
    ``(user_id, key)`` makes the second wait for the first and then fail, and its whole
    unit of work rolls back. It answers 409 with Retry-After; the retry gets the replay.
    """
    if not key:
        return
    db.add(
        IdempotencyRecord(
            user_id=user_id,
            key=key,
            request_fingerprint=request_fingerprint,
            status_code=status_code,
            response_body=jsonable_encoder(body),
            created_at=now or utc_now(),
        )
    )
    try:
        await db.flush()
    except IntegrityError as exc:
        conflict = Conflict(
            "Another request with this Idempotency-Key was being processed at the same time. "
            "Retry to get its answer.",
            code="idempotency_in_progress",
        )
        conflict.headers = {"Retry-After": "1"}
        raise conflict from exc


async def purge_expired(db: AsyncSession, *, now: datetime) -> int:
    """Delete the records whose key has expired (the scheduler's ``idempotency.purge``).

    A stored answer can name a patient (an enrollment's, a questionnaire's); past its day
    it serves no retry, so it is not kept, and the table stays a day of POSTs long.
    """
    result = await db.execute(
        delete(IdempotencyRecord).where(IdempotencyRecord.created_at <= now - KEY_LIFETIME)
    )
    return int(getattr(result, "rowcount", 0) or 0)
