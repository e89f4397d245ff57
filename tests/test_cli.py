"""The command line: content check, demo data idempotency, create-admin."""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy import func, select
from typer.testing import CliRunner

from app import migrate
from app.accounts.models import User
from app.bootstrap import create_clinic_admin
from app.cli import app as cli
from app.clinics.models import Enrollment
from app.db import make_engine
from app.demo import DEMO_PASSWORD, load_demo
from app.programs.catalogue import PROGRAMS
from app.programs.models import ModuleProgress
from app.questionnaires.models import QuestionnaireResponse, RiskAlert
from tests.conftest import _TMP, make_settings


def test_content_check_passes_on_shipped_content():
    result = CliRunner().invoke(cli, ["content", "check"])
    assert result.exit_code == 0, result.output
    assert "Content OK" in result.output


def test_content_check_reports_path_and_line(tmp_path):
    program = tmp_path / "depression"
    program.mkdir()
    (program / "program.yaml").write_text(
        "slug: depression\nlanguage: en\ntitle: Test\nsummary: Test\nweeks: 4\n"
        "instruments:\n  weekly: [phq9]\nmodules:\n  - 01-missing-module\n"
    )
    result = CliRunner().invoke(cli, ["content", "check", "--root", str(tmp_path)])
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if "01-missing-module" in line]
    assert lines and "program.yaml:9:" in lines[0], result.output


async def test_demo_is_idempotent_and_covers_every_program():
    settings = make_settings(
        database_url=f"sqlite+aiosqlite:///{_TMP / f'demo-{uuid.uuid4().hex}.db'}", env="demo"
    )
    await asyncio.to_thread(migrate.upgrade, settings.database_url)
    created, logins = await load_demo(settings)
    again, _ = await load_demo(settings)
    assert created is True and again is False
    engine = make_engine(settings)
    async with engine.connect() as conn:
        users = await conn.scalar(select(func.count()).select_from(User))
        programs = set((await conn.scalars(select(Enrollment.program))).all())
        with_completed_modules = await conn.scalar(
            select(func.count(func.distinct(ModuleProgress.enrollment_id))).where(
                ModuleProgress.completed_at.is_not(None)
            )
        )
        scored = await conn.scalar(
            select(func.count(func.distinct(QuestionnaireResponse.enrollment_id)))
        )
        urgent = await conn.scalar(
            select(func.count()).select_from(RiskAlert).where(RiskAlert.level == "urgent")
        )
    await engine.dispose()
    assert users == 1 + 3 + 9 == len(logins)
    assert programs == set(PROGRAMS)
    assert "admin@demo.tuki.test" in {email for _, email in logins}
    assert with_completed_modules == 9, "every demo patient has some history"
    assert scored == 9
    assert urgent == 1, "one demo patient shows the therapist an urgent alert"


async def test_create_admin_refuses_weak_password_and_works_with_a_good_one():
    settings = make_settings(
        database_url=f"sqlite+aiosqlite:///{_TMP / f'admin-{uuid.uuid4().hex}.db'}"
    )
    await asyncio.to_thread(migrate.upgrade, settings.database_url)
    try:
        await create_clinic_admin(
            settings,
            email="a@x.org",
            full_name="Ada Admin",
            clinic_name="North",
            password=DEMO_PASSWORD,
        )
        raise AssertionError("the demo password must be refused outside the demo")
    except ValueError as exc:
        assert "too common" in str(exc)
    await create_clinic_admin(
        settings,
        email="a@x.org",
        full_name="Ada Admin",
        clinic_name="North",
        password="four calm river stones",
    )
    engine = make_engine(settings)
    async with engine.connect() as conn:
        role = await conn.scalar(select(User.role).where(User.email == "a@x.org"))
    await engine.dispose()
    assert role == "admin"
