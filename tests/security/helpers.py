"""Shared arrangements for the security tests: logged-in clients and DB snapshots."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts import service as accounts_service
from app.accounts.dependencies import session_cookie_name
from app.accounts.models import User
from app.db import Base


async def client_for(
    app: FastAPI, db: AsyncSession, clock, user: User | None, *, base_url: str = "http://test"
) -> httpx.AsyncClient:
    """A client with a fully logged-in session for ``user`` (anonymous when None)."""
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, raise_app_exceptions=False), base_url=base_url
    )
    if user is None:
        return client
    settings = app.state.settings
    token, session = await accounts_service.create_session(
        db,
        user,
        settings=settings,
        now=clock.now(),
        ip_address=None,
        user_agent=None,
        mfa_verified=True,
    )
    await db.commit()
    client.cookies.set(session_cookie_name(settings), token)
    client.headers["X-CSRF-Token"] = session.csrf_token
    return client


# Tables a request may legitimately touch without changing anything a user owns.
VOLATILE = {"audit_event", "user_session", "login_throttle"}


async def snapshot(db: AsyncSession) -> dict[str, tuple[int, str]]:
    """Row count and a digest of every row, per table (bookkeeping tables excluded)."""
    result: dict[str, tuple[int, str]] = {}
    for table in Base.metadata.sorted_tables:
        if table.name in VOLATILE:
            continue
        count = await db.scalar(select(func.count()).select_from(table))
        order = list(table.primary_key.columns) or list(table.columns)
        rows = (await db.execute(select(table).order_by(*order))).all()
        result[table.name] = (int(count or 0), repr([tuple(r) for r in rows]))
    return result
