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
keys_app = typer.Typer(help="Encryption keys for message bodies, answers and 2FA secrets.")
app.add_typer(keys_app, name="keys")
retention_app = typer.Typer(help="Pseudonymise patients past their clinic's retention period.")
app.add_typer(retention_app, name="retention")


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
    graceful_timeout: int = typer.Option(
        30, help="On SIGTERM, seconds to let requests in flight finish before closing them."
    ),
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
        timeout_graceful_shutdown=graceful_timeout,
    )


@app.command()
def worker(
    once: bool = typer.Option(False, help="Run one plan and one delivery sweep, then exit."),
) -> None:
    """Run the sweeps (plan, deliver, purge sessions, daily retention) until stopped.

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


@keys_app.command("rotate")
def keys_rotate() -> None:
    """Re-encrypt every encrypted value under the first key in TUKI_ENCRYPTION_KEYS.

    Runs in short batches while the app keeps serving; safe to interrupt and run again.
    Put the new key first (and keep the old ones after it) in the app's configuration
    before running it.
    """
    from app.db import Database, make_engine
    from app.ops import keys

    settings = get_settings()
    secret = settings.encryption_keys.get_secret_value()

    async def run() -> tuple[keys.RotationReport, dict[str, int]]:
        database = Database(make_engine(settings, application_name="tuki.cli"))
        try:
            report = await keys.rotate(database, secret)
            return report, await keys.check(database, secret)
        finally:
            await database.dispose()

    _ensure_sqlite_dir()
    try:
        report, remaining = asyncio.run(run())
    except keys.UnreadableCiphertextError as exc:
        typer.echo(f"Rotation stopped: {exc}", err=True)
        raise typer.Exit(1) from exc
    for line in report.lines():
        typer.echo(line)
    left = sum(remaining.values())
    if left:
        typer.echo(f"{left} value(s) were rewritten under an old key meanwhile; run it again.")
        raise typer.Exit(2)
    typer.echo(f"{report.rotated} value(s) re-encrypted; none is left under an old key.")


@keys_app.command("generate")
def keys_generate() -> None:
    """Print a new key to put first in TUKI_ENCRYPTION_KEYS."""
    from app.ops.keys import generate_key

    typer.echo(generate_key())


@app.command()
def backup(path: Path = typer.Argument(..., help="File to write the backup to.")) -> None:
    """Back up the database while the app keeps running (SQLite online backup or pg_dump -Fc)."""
    from app.ops.backup import BackupError
    from app.ops.backup import backup as make_backup

    try:
        outcome = make_backup(get_settings().database_url, path)
    except BackupError as exc:
        typer.echo(f"Backup failed: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(
        f"Backup written to {outcome.path} ({outcome.size_bytes} bytes, {outcome.seconds:.1f} s)."
    )


@app.command()
def restore(
    path: Path = typer.Argument(..., help="Backup file made by `tuki backup`."),
    yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation."),
) -> None:
    """Replace the database's contents with a backup. Stop the app (web and workers) first."""
    from app.ops.backup import BackupError
    from app.ops.backup import restore as restore_backup

    settings = get_settings()
    if not yes:
        typer.confirm(
            "Everything in the configured database will be replaced. Continue?", abort=True
        )
    _ensure_sqlite_dir()
    try:
        outcome = restore_backup(path, settings.database_url)
    except BackupError as exc:
        typer.echo(f"Restore failed: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"Restored from {outcome.path} in {outcome.seconds:.1f} s. Run `tuki migrate` next.")


@retention_app.command("run")
def retention_run() -> None:
    """Pseudonymise patients whose treatment ended longer ago than their clinic keeps data."""
    from app.common.clock import Clock
    from app.db import Database, make_engine
    from app.ops.retention import retention_report

    settings = get_settings()

    async def run() -> str:
        database = Database(make_engine(settings, application_name="tuki.cli"))
        try:
            return (await retention_report(database, settings=settings, clock=Clock())).line()
        finally:
            await database.dispose()

    _ensure_sqlite_dir()
    typer.echo(asyncio.run(run()))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
