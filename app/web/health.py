"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import Depends
from fastapi.responses import JSONResponse
from sqlalchemy import text

from app.accounts.policy import PUBLIC
from app.common.routing import Router
from app.deps import DbSession

router = Router(tags=["health"])


@router.get("/healthz", dependencies=[Depends(PUBLIC)])
async def healthz() -> dict[str, str]:
    """The process is up; no database call, so it stays fast under load."""
    return {"status": "ok"}


@router.get("/readyz", response_model=None, dependencies=[Depends(PUBLIC)])
async def readyz(db: DbSession) -> JSONResponse | dict[str, str]:
    """Ready to serve: the database answers."""
    try:
        await db.execute(text("SELECT 1"))
    except Exception:
        return JSONResponse(
            {"status": "unavailable", "detail": "database not reachable"}, status_code=503
        )
    return {"status": "ready"}
