"""The research CSV: pseudonymised, no direct identifiers or free text, formula-safe, audited."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from sqlalchemy import select

from app.adherence.service import EventKind
from app.audit.models import AuditEvent
from app.config import ROOT_DIR
from app.exports.pseudonym import Pseudonymiser
from app.exports.tabular import SPECS, render_dictionary, safe_cell
from app.main import create_app
from tests.adherence.helpers import log, message, score
from tests.conftest import make_settings
from tests.factories import build_world, login

CANARY_NAME = "Zebulon Canaryfield"
CANARY_EMAIL = "canary.patient@example.org"
CANARY_TEXT = "CANARY-free-text-4711"


async def _world_with_canaries(db, clock):
    world = await build_world(db, clock.now())
    world.patient_user.full_name = CANARY_NAME
    world.patient_user.email = CANARY_EMAIL
    e = world.enrollment
    await log(db, e, EventKind.LOGIN, clock.now())
    # Free text smuggled into an event's detail must not come out.
    await log(db, e, EventKind.MODULE_OPENED, clock.now(), module=f"{CANARY_TEXT} with spaces!?")
    await log(db, e, EventKind.STATUS_CHANGED, clock.now(), role="admin", to="=HYPERLINK(1)")
    await message(db, e, clock.now(), role="therapist", functions=("autonomy", "alliance"))
    await score(db, e, clock.now(), 13, band="-moderate")
    await db.commit()
    return world


def _rows(body: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(body)))


@pytest.mark.parametrize("dataset", ["enrollments", "events", "scores"])
async def test_export_has_no_identifiers_or_free_text(client, db, clock, dataset):
    world = await _world_with_canaries(db, clock)
    await login(client, world.admin.email)
    r = await client.get("/api/v1/exports/adherence.csv", params={"dataset": dataset})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    body = r.text
    for canary in (CANARY_NAME, CANARY_EMAIL, CANARY_TEXT, "Canaryfield", "example.org"):
        assert canary not in body
    rows = _rows(body)
    assert list(rows[0].keys()) == [c.name for c in SPECS[dataset].columns]
    names = Pseudonymiser(make_settings().export_pseudonym_key.get_secret_value())
    mine = {row["pseudonym"] for row in rows}
    assert names.enrollment(world.enrollment.id) in mine
    assert names.enrollment(world.other_clinic_enrollment.id) not in mine  # other clinic
    for row in rows:
        assert str(world.enrollment.id) != row["pseudonym"]


async def test_formula_injection_is_neutralised(client, db, clock):
    world = await _world_with_canaries(db, clock)
    await login(client, world.admin.email)
    events = _rows((await client.get("/api/v1/exports/adherence.csv?dataset=events")).text)
    assert not any(v.startswith(("=", "+", "@")) for row in events for v in row.values())
    scores = _rows((await client.get("/api/v1/exports/adherence.csv?dataset=scores")).text)
    assert scores[0]["band"] == "'-moderate"
    assert safe_cell("=1+1") == "'=1+1" and safe_cell("@SUM(A1)") == "'@SUM(A1)"
    assert safe_cell("+4711") == "'+4711" and safe_cell("\tx") == "'\tx"
    assert safe_cell(-3) == "-3" and safe_cell("plain") == "plain"


async def test_pseudonyms_are_stable_per_key(database, clock, db):
    world = await _world_with_canaries(db, clock)
    seen = []
    for key in ("key-one", "key-one", "key-two"):
        app = create_app(make_settings(export_pseudonym_key=key), database=database, clock=clock)
        import httpx

        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")
        await login(client, world.admin.email)
        rows = _rows((await client.get("/api/v1/exports/adherence.csv")).text)
        seen.append(sorted(row["pseudonym"] for row in rows))
    assert seen[0] == seen[1]
    assert set(seen[0]).isdisjoint(seen[2])
    assert seen[0] == sorted(
        Pseudonymiser("key-one").enrollment(e.id)
        for e in (world.enrollment, world.other_enrollment)
    )


async def test_only_admins_export_and_a_refusal_is_audited(client_factory, db, clock):
    world = await _world_with_canaries(db, clock)
    for user in (world.therapist, world.patient_user):
        client = client_factory()
        await login(client, user.email)
        r = await client.get("/api/v1/exports/adherence.csv")
        assert r.status_code == 403
        denied = await db.scalar(
            select(AuditEvent).where(
                AuditEvent.actor_user_id == user.id, AuditEvent.outcome == "denied"
            )
        )
        assert denied is not None and denied.resource_type == "adherence_csv"


async def test_an_export_is_a_disclosure_of_each_patient(client, db, clock):
    world = await _world_with_canaries(db, clock)
    await login(client, world.admin.email)
    r = await client.get("/api/v1/exports/adherence.csv", params={"program": "depression"})
    assert r.status_code == 200
    disclosed = set(
        await db.scalars(select(AuditEvent.patient_id).where(AuditEvent.action == "disclose"))
    )
    assert disclosed == {world.patient.id}  # the gad patient was filtered out
    bad = await client.get("/api/v1/exports/adherence.csv", params={"program": "nope"})
    assert bad.status_code == 422
    bad = await client.get("/api/v1/exports/adherence.csv", params={"dataset": "messages"})
    assert bad.status_code == 422


async def test_the_export_streams(database, db, clock, monkeypatch, settings):
    """Rows go out a partition at a time (httpx's test transport buffers the body, so the
    generator the StreamingResponse consumes is driven directly)."""
    from app.adherence.reports import ReportFilters
    from app.content.service import get_library
    from app.exports import tabular

    monkeypatch.setattr(tabular, "PARTITION", 10)
    world = await build_world(db, clock.now())
    for i in range(35):
        await log(db, world.enrollment, EventKind.PAGE_VIEWED, clock.now(), module="m", page=i)
    await db.commit()
    chunks = [
        chunk
        async for chunk in tabular.stream_csv(
            database,
            "events",
            clinic_id=world.clinic.id,
            filters=ReportFilters(),
            settings=settings,
            library=get_library(settings.content_dir, settings.content_overlay),
            now=clock.now(),
        )
    ]
    assert len(_rows("".join(chunks))) == 35
    assert len(chunks) == 1 + 4  # the header, then 10 + 10 + 10 + 5 rows


def test_the_data_dictionary_documents_every_column():
    shipped = (Path(ROOT_DIR) / "docs" / "data-dictionary.md").read_text(encoding="utf-8")
    assert shipped == render_dictionary(), "regenerate docs/data-dictionary.md"
    for spec in SPECS.values():
        for column in spec.columns:
            assert f"| `{column.name}` |" in shipped


async def test_the_data_dictionary_is_served(client, db, clock):
    world = await build_world(db, clock.now())
    await login(client, world.admin.email)
    r = await client.get("/api/v1/exports/data-dictionary")
    assert r.status_code == 200 and "`therapist_pseudonym`" in r.text
    page = await client.get("/admin/reports/data-dictionary")
    assert page.status_code == 200 and "<table>" in page.text
