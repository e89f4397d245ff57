"""The ``tuki`` command: serve, worker, migrate, demo, create-admin, content check."""

from __future__ import annotations

import asyncio
import getpass
import re
import sys
from pathlib import Path

import typer

from app.config import get_settings

app = typer.Typer(help="Tuki: therapist-assisted internet CBT.", no_args_is_help=True)
content_app = typer.Typer(help="Work with the CBT content in modules/.")
app.add_typer(content_app, name="content")
adherence_app = typer.Typer(help="The adherence log and its rollup.")
app.add_typer(adherence_app, name="adherence")


def _ensure_sqlite_dir() -> None:
    settings = get_settings()
    if settings.is_sqlite:
        match = re.match(r"sqlite\+aiosqlite:///(.+)", settings.database_url)
        if match and match.group(1) != ":memory:":
            Path(match.group(1)).parent.mkdir(parents=True, exist_ok=True)


@app.command()
def migrate() -> None:
    """Bring the database schema up to date."""
    from app import migrate as migrations

    _ensure_sqlite_dir()
    migrations.upgrade()
    typer.echo("Database is up to date.")


@app.command()
def serve(
    host: str = typer.Option(None, help="Defaults to TUKI_HOST."),
    port: int = typer.Option(None, help="Defaults to TUKI_PORT."),
    workers: int = typer.Option(None, help="Defaults to TUKI_WORKERS."),
    reload: bool = typer.Option(False, help="Restart on code changes (development only)."),
) -> None:
    """Serve the web app with uvicorn (uvloop and httptools)."""
    import uvicorn

    settings = get_settings()
    uvicorn.run(
        "app.asgi:app",
        host=host or settings.host,
        port=port or settings.port,
        workers=None if reload else (workers or settings.web_workers),
        loop="uvloop",
        http="httptools",
        proxy_headers=True,
        forwarded_allow_ips="127.0.0.1",
        access_log=False,
        reload=reload,
    )


@app.command()
def worker(
    once: bool = typer.Option(False, help="Run one plan and one delivery sweep, then exit."),
) -> None:
    """Run the reminder sweeps (plan, deliver, purge sessions) until stopped.

    Any number of workers may run at once; run web instances with
    TUKI_SCHEDULER_ENABLED=false when workers are used.
    """
    from app.reminders.scheduler import run_worker

    _ensure_sqlite_dir()
    typer.echo(asyncio.run(run_worker(get_settings(), once=once)))


@app.command()
def demo() -> None:
    """Load the demo clinic (idempotent) and print the logins."""
    from app.demo import DEMO_PASSWORD, load_demo

    settings = get_settings()
    if settings.is_production:
        typer.echo("The demo data cannot be loaded in production.", err=True)
        raise typer.Exit(1)
    created, logins = asyncio.run(load_demo(settings))
    typer.echo("Demo data loaded." if created else "Demo data already present; nothing changed.")
    typer.echo(
        f"\nOpen {settings.base_url}/login and use one of these (password: {DEMO_PASSWORD}):"
    )
    for role, email in logins:
        typer.echo(f"  {role:<10} {email}")


@app.command("create-admin")
def create_admin(
    email: str = typer.Option(..., prompt=True),
    full_name: str = typer.Option(..., prompt="Full name"),
    clinic: str = typer.Option(..., prompt="Clinic name"),
) -> None:
    """Create a clinic (if new) and an admin account for it."""
    from app.bootstrap import create_clinic_admin

    password = (
        getpass.getpass("Password: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\n")
    )
    try:
        asyncio.run(
            create_clinic_admin(
                get_settings(),
                email=email,
                full_name=full_name,
                clinic_name=clinic,
                password=password,
            )
        )
    except ValueError as exc:
        typer.echo(f"Not created: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"Admin {email} created for {clinic}.")


@content_app.command("check")
def content_check(
    root: Path = typer.Option(None, help="Content folder; defaults to TUKI_CONTENT_DIR."),
) -> None:
    """Validate every program, module and instrument; print each problem as path:line."""
    from app.content.loader import check_content

    settings = get_settings()
    problems = check_content(root or settings.content_dir, settings.content_overlay)
    for problem in problems:
        typer.echo(str(problem))
    if problems:
        typer.echo(f"{len(problems)} problem(s) found.", err=True)
        raise typer.Exit(1)
    typer.echo("Content OK.")


@adherence_app.command("rebuild")
def adherence_rebuild(
    dry_run: bool = typer.Option(False, help="Report drift without changing anything."),
) -> None:
    """Recompute every enrollment's rollup and answered waits from the event log.

    Set-based (INSERT ... SELECT ... GROUP BY) in one transaction; on PostgreSQL concurrent
    writers wait until it commits. Prints how many rollup rows had drifted from the log.
    """
    from app.adherence.service import rebuild
    from app.db import Database, make_engine

    async def run() -> str:
        database = Database(make_engine(get_settings(), application_name="tuki.cli"))
        try:
            async with database.sessionmaker() as session:
                report = await rebuild(session)
                if dry_run:
                    await session.rollback()
                else:
                    await session.commit()
        finally:
            await database.dispose()
        verb = "would change" if dry_run else "changed"
        return (
            f"{report.rollups} rollup rows and {report.waits} answered waits rebuilt; "
            f"{report.drifted} rollup rows {verb}."
        )

    _ensure_sqlite_dir()
    typer.echo(asyncio.run(run()))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
