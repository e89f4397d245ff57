"""Reference for scenario A: a bare Starlette route sending Tuki's own SQL through raw asyncpg.

``benchmarks/run.py`` records the statements (with their parameters) that one
``GET /api/v1/enrollments/{id}/adherence`` sends -- session lookup, access check, rollup
reads, the audit INSERT -- and writes them to the file named by ``TUKI_BENCH_REPLAY``.
This app sends exactly those statements, in order, in one transaction per request, and
returns the rows of its SELECTs as JSON: the same database work with no framework,
dependency injection, ORM or pydantic on top. Serve it as Tuki is served:

    taskset -c 0 uvicorn benchmarks.reference_app:app --workers 1 --loop uvloop \
        --http httptools --no-access-log
"""

from __future__ import annotations

import json
import os
import pickle
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

DSN = os.environ.get("TUKI_BENCH_DSN", "postgresql://postgres@127.0.0.1:5432/tuki_bench")
REPLAY = Path(os.environ.get("TUKI_BENCH_REPLAY", "var/bench/replay_a.pickle"))
# Without a recording (the /healthz control of ``run.py``) the route has nothing to replay.
STATEMENTS: list[tuple[str, tuple[Any, ...]]] = (
    pickle.loads(REPLAY.read_bytes()) if REPLAY.exists() else []
)

state: dict[str, asyncpg.Pool] = {}


@asynccontextmanager
async def lifespan(_app: Starlette) -> AsyncIterator[None]:
    state["pool"] = await asyncpg.create_pool(DSN, min_size=4, max_size=10)
    yield
    await state["pool"].close()


async def adherence(request: Request) -> Response:
    body: list[list[dict[str, Any]]] = []
    async with state["pool"].acquire() as conn, conn.transaction():
        for statement, parameters in STATEMENTS:
            rows = await conn.fetch(statement, *parameters)
            if statement.lstrip().upper().startswith(("SELECT", "WITH")):
                body.append([dict(row) for row in rows])
    return Response(json.dumps(body, default=str), media_type="application/json")


async def healthz(request: Request) -> Response:
    return Response('{"status":"ok"}', media_type="application/json")


app = Starlette(
    routes=[
        Route("/enrollments/{enrollment_id:int}/adherence", adherence),
        Route("/healthz", healthz),
    ],
    lifespan=lifespan,
)
