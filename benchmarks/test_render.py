"""Render micro-benchmark (QUALITY.md 4.3 B): pages of 50 rows, template alone vs request.

A SQLite database in a temporary directory is migrated and seeded with one therapist's
caseload of 50 patients in a realistic mix (a few open alerts, half the threads waiting
for a reply, exercises awaiting feedback, patients gone quiet, one paused and one
completed enrollment). The page is requested once through the real app with
``templates.TemplateResponse`` wrapped, which records the template name and the very
context the handler built from the services; nothing is hand-made, so the benchmark follows
the template and the handler as they change. Then:

- the render of that context alone (template lookup and render to a string, with the
  app's Jinja environment, inside the context variables captured at the served render:
  the ``use_locale`` locale and whatever else ``app.templating.render`` sets) is timed by
  pytest-benchmark, after checking it reproduces the served HTML byte for byte;
- the whole request is timed in-process (httpx over ASGI, middleware, SQL and audit rows
  included), in rounds before and after the render benchmark, and their median taken.

Gates: median render ≤ 1.5 ms and median render / median request ≤ 0.3. A miss fails the
run. Not collected by ``make test`` (``testpaths`` is ``tests/``); run ``make bench-render``.
"""

from __future__ import annotations

import asyncio
import contextvars
import statistics
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app import migrate
from app.accounts.models import Role, User
from app.adherence.models import EnrollmentRollup
from app.clinics.models import Enrollment, EnrollmentStatus, Patient
from app.common.clock import FrozenClock
from app.common.crypto import FieldCipher
from app.config import Settings
from app.db import Database, make_engine
from app.inbox.models import Message
from app.main import create_app
from app.programs.models import ExerciseResponse
from app.questionnaires.models import RiskAlert
from app.templating import templates
from tests.factories import create_clinic, create_user, login
from tests.perf.seed import add_caseload

NOW = datetime(2026, 3, 4, 9, 0, tzinfo=UTC)
PATIENTS = 50
THREAD_MESSAGES = 50
WARMUP = 5
ROUNDS = 25
"""Request rounds on each side of the render benchmark (2 x 25 in all)."""
RENDER_BUDGET_S = 1.5e-3
RATIO_BUDGET = 0.3

_BODIES = (
    "Thank you for the feedback.",
    "I tried the exercise again this week. It was hard, but I noticed something new about "
    "my mornings.",
    "The worry came back on Sunday evening and I could not sleep. I wrote it down like we "
    "agreed and it helped a little, but I am not sure I am doing it right.",
    "Can we move next week's module? Work is busy until Thursday.",
    "I read the part about avoidance twice. It sounds like me, especially with phone calls "
    "and the post I leave unopened. Is it normal that it feels worse before it gets better? "
    "I keep thinking I should already be further along.",
)


@dataclass
class Site:
    app: FastAPI
    therapist_email: str
    patient_email: str


@dataclass
class Captured:
    """One served page: the template the handler chose, its context and the HTML sent.

    ``variables`` are the context variables in effect when the page was rendered (the
    locale and anything else ``app.templating.render`` sets around the render).
    """

    name: str
    context: dict[str, Any]
    variables: contextvars.Context
    html: str


def _settings(directory: Path) -> Settings:
    return Settings(
        env="test",
        database_url=f"sqlite+aiosqlite:///{directory / 'render.db'}",
        base_url="http://test",
        require_staff_2fa=False,
        scheduler_enabled=False,
        demo_outbox_dir=directory / "outbox",
    )


async def _seed(db: AsyncSession, cipher: FieldCipher) -> tuple[str, str]:
    """The caseload of ``tests/perf/seed.py``, reshaped into an ordinary working week.

    Patient ``i`` (in enrollment order): an open alert when ``i % 10 == 0``, the others
    acknowledged; a thread waiting for a reply when ``i`` is even (one to three messages,
    2 to 146 hours old, some read); gone quiet (answered 24 days ago, last activity 8 to
    17 days ago) when ``i`` is odd and divisible by 3; answered in the last 80 minutes
    otherwise; a depression module exercise awaiting feedback when ``i % 6 == 0``. Returns
    the therapist's e-mail and that of patient 0, whose thread holds ``THREAD_MESSAGES``.
    """
    start = NOW - timedelta(days=60)
    clinic = await create_clinic(db, start, name="Render Clinic")
    therapist = await create_user(db, clinic, Role.THERAPIST, start, name="Tuuli Terapeutti")
    ids = await add_caseload(db, clinic, therapist, NOW, PATIENTS, cipher=cipher)
    found = await db.execute(
        select(Enrollment.id, Patient.user_id)
        .join(Patient, Patient.id == Enrollment.patient_id)
        .where(Enrollment.id.in_(ids))
    )
    users: dict[int, int] = dict(found.all())
    await db.execute(
        update(RiskAlert)
        .where(RiskAlert.enrollment_id.in_([e for i, e in enumerate(ids) if i % 10]))
        .values(acknowledged_at=NOW - timedelta(days=1), acknowledged_by_id=therapist.id)
    )
    await db.execute(delete(Message).where(Message.enrollment_id.in_(ids)))
    bodies = [cipher.encrypt(text) for text in _BODIES]
    rows: list[dict[str, Any]] = []

    def message(i: int, role: str, at: datetime, read: bool = True) -> None:
        rows.append(
            {
                "enrollment_id": ids[i],
                "sender_id": users[ids[i]] if role == "patient" else therapist.id,
                "sender_role": role,
                "body_encrypted": bodies[(i + len(rows)) % len(bodies)],
                "created_at": at,
                "read_at": at + timedelta(minutes=30) if read else None,
            }
        )

    quiet = [i for i in range(PATIENTS) if i % 2 and i % 3 == 0]
    for n in range(THREAD_MESSAGES - 4):
        message(0, ("patient", "therapist")[n % 2], NOW - timedelta(days=40, hours=-12 * n))
    for i in range(PATIENTS):
        message(i, "patient", NOW - timedelta(days=25))
        message(i, "therapist", NOW - timedelta(days=24))
        if i % 2 == 0:
            waited = 2 + 3 * i
            for k in range(1 + i % 3 if i else 2):
                message(i, "patient", NOW - timedelta(hours=waited - k), read=i % 4 == 2)
        elif i not in quiet:
            message(i, "patient", NOW - timedelta(hours=20))
            message(i, "therapist", NOW - timedelta(minutes=30 + i))
    await db.execute(insert(Message), rows)
    await db.execute(
        update(EnrollmentRollup)
        .where(EnrollmentRollup.enrollment_id.in_([ids[i] for i in range(PATIENTS) if i % 2]))
        .values(awaiting_reply_since=None)
    )
    for i in quiet:
        await db.execute(
            update(EnrollmentRollup)
            .where(EnrollmentRollup.enrollment_id == ids[i])
            .values(last_activity_at=NOW - timedelta(days=8 + i % 10))
        )
    answer = cipher.encrypt('{"answers": ["work", "sleep", "friends", "running"]}')
    await db.execute(
        insert(ExerciseResponse),
        [
            {
                "enrollment_id": ids[i],
                "program": "depression",
                "module_key": "01-understanding-low-mood",
                "exercise_id": exercise,
                "exercise_type": "free_text",
                "status": "submitted",
                "data_encrypted": answer,
                "version": 2,
                "created_at": NOW - timedelta(days=3),
                "updated_at": NOW - timedelta(days=2, hours=i),
                "submitted_at": NOW - timedelta(days=2, hours=i),
            }
            for i in range(0, PATIENTS, 6)
            for exercise in ("my-circle", "my-starting-point")[: 1 + (i % 12 == 0)]
        ],
    )
    await db.execute(
        update(Enrollment).where(Enrollment.id == ids[46]).values(status=EnrollmentStatus.PAUSED)
    )
    await db.execute(
        update(Enrollment).where(Enrollment.id == ids[49]).values(status=EnrollmentStatus.COMPLETED)
    )
    patient_email = await db.scalar(select(User.email).where(User.id == users[ids[0]]))
    assert patient_email is not None
    return therapist.email, patient_email


@pytest.fixture(scope="module")
async def site(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Site]:
    """The real app on a freshly migrated and seeded SQLite file, with a frozen clock."""
    settings = _settings(tmp_path_factory.mktemp("render"))
    await asyncio.to_thread(migrate.upgrade, settings.database_url)
    engine = make_engine(settings, application_name="tuki.bench")
    database = Database(engine)
    app = create_app(settings, database=database, clock=FrozenClock(NOW))
    async with database.sessionmaker() as db:
        therapist_email, patient_email = await _seed(db, app.state.cipher)
        await db.commit()
    yield Site(app, therapist_email, patient_email)
    await engine.dispose()


async def _client(site: Site, email: str) -> httpx.AsyncClient:
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=site.app), base_url="http://test")
    await login(client, email)
    return client


async def _capture(client: httpx.AsyncClient, url: str) -> Captured:
    """Serve ``url`` once and keep what the handler handed to Jinja."""
    seen: list[tuple[str, dict[str, Any], contextvars.Context]] = []
    original = templates.TemplateResponse

    def recording(request: Any, name: str, context: dict[str, Any], **kwargs: Any) -> Any:
        seen.append((name, context, contextvars.copy_context()))
        return original(request, name, context, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(templates, "TemplateResponse", recording)
        response = await client.get(url)
    assert response.status_code == 200, response.text[:300]
    ((name, context, variables),) = seen
    return Captured(name, context, variables, response.text)


def _renderer(captured: Captured) -> Callable[[], str]:
    """What ``app.templating.render`` does per page, minus the response object.

    The render runs inside the context variables captured with the page, so the locale
    (``use_locale``) and any other per-render setting are the ones the app used.
    """
    context = captured.context

    def render() -> str:
        return templates.get_template(captured.name).render(context)

    def run() -> str:
        return captured.variables.run(render)

    return run


def _first_difference(rendered: str, served: str) -> str:
    """Where the re-render leaves the served page, for a readable failure."""
    at = next(
        (n for n, (a, b) in enumerate(zip(rendered, served, strict=False)) if a != b),
        min(len(rendered), len(served)),
    )
    return (
        f"the re-render differs from the served page at character {at}:"
        f" {rendered[at - 80 : at + 80]!r} != {served[at - 80 : at + 80]!r}"
    )


async def _request_times(client: httpx.AsyncClient, url: str, rounds: int) -> list[float]:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        response = await client.get(url)
        times.append(time.perf_counter() - started)
        assert response.status_code == 200
    return times


async def _measure(
    benchmark: Any,
    capsys: pytest.CaptureFixture[str],
    client: httpx.AsyncClient,
    url: str,
    rows: dict[str, int],
) -> None:
    """Request rounds, the render benchmark, request rounds again; then the two gates."""
    captured = await _capture(client, url)
    render = _renderer(captured)
    html = render()
    assert html == captured.html, _first_difference(html, captured.html)
    await _request_times(client, url, WARMUP)
    requests = await _request_times(client, url, ROUNDS)
    benchmark.group = "QUALITY.md 4.3 B render"
    benchmark(render)
    requests += await _request_times(client, url, ROUNDS)
    if benchmark.disabled:
        return
    render_s = benchmark.stats.stats.median
    request_s = statistics.median(requests)
    ratio = render_s / request_s
    benchmark.extra_info.update(
        template=captured.name,
        rows=rows,
        request_median_ms=round(request_s * 1e3, 3),
        render_over_request=round(ratio, 4),
    )
    with capsys.disabled():
        print(
            f"\nGET {url} ({captured.name}, {rows}): render median {render_s * 1e3:.3f} ms,"
            f" request median {request_s * 1e3:.2f} ms over {len(requests)} requests,"
            f" ratio {ratio:.3f} (gates: render <= {RENDER_BUDGET_S * 1e3} ms,"
            f" ratio <= {RATIO_BUDGET})"
        )
    missed = []
    if render_s > RENDER_BUDGET_S:
        missed.append(f"render median {render_s * 1e3:.3f} ms > {RENDER_BUDGET_S * 1e3} ms")
    if ratio > RATIO_BUDGET:
        missed.append(f"render / request median {ratio:.3f} > {RATIO_BUDGET}")
    assert not missed, "; ".join(missed)


async def test_therapist_work_list(
    site: Site, benchmark: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """GET /therapist for 50 patients: alerts, replies, feedback, quiet and the caseload."""
    client = await _client(site, site.therapist_email)
    captured = await _capture(client, "/therapist")
    context = captured.context
    rows = {
        "alerts": len(context["risk_alerts"]),
        "replies": len(context["replies"]),
        "feedback": len(context["feedback"]),
        "quiet": len(context["quiet"]),
        "caseload": len(context["enrollments"]),
    }
    assert rows["caseload"] == PATIENTS
    assert all(rows.values()), rows
    await _measure(benchmark, capsys, client, "/therapist", rows)


async def test_patient_messages(
    site: Site, benchmark: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """GET /patient/messages: the patient's thread of 50 messages with the composer."""
    client = await _client(site, site.patient_email)
    captured = await _capture(client, "/patient/messages")
    rows = {"messages": len(captured.context["thread"].items)}
    assert rows["messages"] == THREAD_MESSAGES
    await _measure(benchmark, capsys, client, "/patient/messages", rows)
