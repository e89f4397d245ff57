"""Idempotency-Key support for POSTs that create things: a retry gets the first answer."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.common.errors import Invalid
from app.common.idempotency_models import IdempotencyRecord

HEADER = "Idempotency-Key"


def fingerprint(method: str, path: str, body: Any) -> str:
    payload = json.dumps(jsonable_encoder(body), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(f"{method} {path} {payload}".encode()).hexdigest()


async def replay(
    db: AsyncSession, *, user_id: int, key: str | None, request_fingerprint: str
) -> JSONResponse | None:
    """The stored answer for this key, or None if it is new."""
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
) -> None:
    if not key:
        return
    db.add(
        IdempotencyRecord(
            user_id=user_id,
            key=key,
            request_fingerprint=request_fingerprint,
            status_code=status_code,
            response_body=jsonable_encoder(body),
        )
    )
    await db.flush()
