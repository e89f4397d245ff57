"""Where one request's time goes: cProfile (or pyinstrument) over N in-process requests.

    .venv/bin/python -m benchmarks.profile_request /api/v1/enrollments/3/adherence \
        [--as u3@bench.invalid] [-n 300] [--sort tottime] [--pyinstrument]

cProfile counts every resumption of a coroutine as a call; ``--pyinstrument`` (the ``dev``
extra) samples the wall clock instead and prints the call tree. For the served process
under ``wrk``, sample it with ``py-spy record --pid <uvicorn pid> -f raw`` (also in ``dev``).

Runs against the database ``benchmarks/run.py`` leaves behind (``<TUKI_BENCH_DATABASE_URL>_run``,
whose admin and first therapists have the bench password), through the real app over ASGI,
so what it shows is the framework, ORM and serialisation cost of the request.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import time

import httpx

from app.config import Settings
from app.db import Database, make_engine
from app.main import create_app
from benchmarks.run import APP_PORT, PASSWORD


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path")
    parser.add_argument("--as", dest="email", default="u3@bench.invalid")
    parser.add_argument("-n", type=int, default=300)
    parser.add_argument("--sort", default="cumulative")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--pyinstrument", action="store_true", help="sample with pyinstrument")
    args = parser.parse_args()
    url = (
        os.environ.get(
            "TUKI_BENCH_DATABASE_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/tuki_bench"
        )
        + "_run"
    )
    settings = Settings(
        database_url=url,
        env="development",
        scheduler_enabled=False,
        base_url=f"http://127.0.0.1:{APP_PORT}",
    )
    database = Database(make_engine(settings, application_name="tuki.profile"))
    app = create_app(settings, database=database)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=settings.base_url) as client:
        r = await client.post(
            "/api/v1/auth/login", json={"email": args.email, "password": PASSWORD}
        )
        r.raise_for_status()
        for _ in range(20):
            (await client.get(args.path)).raise_for_status()
        if args.pyinstrument:
            from pyinstrument import Profiler

            sampler = Profiler(interval=0.0005)
            t0 = time.perf_counter()
            sampler.start()
            for _ in range(args.n):
                await client.get(args.path)
            sampler.stop()
            elapsed = time.perf_counter() - t0
        else:
            profile = cProfile.Profile()
            t0 = time.perf_counter()
            profile.enable()
            for _ in range(args.n):
                await client.get(args.path)
            profile.disable()
            elapsed = time.perf_counter() - t0
    await database.dispose()
    print(f"{args.n} requests in {elapsed:.2f} s: {elapsed / args.n * 1000:.2f} ms each")
    if args.pyinstrument:
        print(sampler.output_text(color=False, unicode=False))
    else:
        pstats.Stats(profile).sort_stats(args.sort).print_stats(args.top)


if __name__ == "__main__":
    asyncio.run(main())
