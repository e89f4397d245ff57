"""Risk alerts: listing by role and urgency, acknowledging, the therapist's home, query counts."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from app.audit.models import AuditEvent
from app.questionnaires.models import RiskAlert
from tests.factories import build_world, create_enrollment, login
from tests.querycount import count_statements
from tests.questionnaires.helpers import create_alert


class TestList:
    async def test_therapist_sees_own_patients_unacknowledged_and_urgent_first(
        self, client, db, clock
    ):
        world = await build_world(db, clock.now())
        t0 = clock.now()
        info = await create_alert(db, world.enrollment, level="info", at=t0 + timedelta(hours=3))
        urgent_old = await create_alert(db, world.enrollment, level="urgent", at=t0)
        warning = await create_alert(
            db, world.enrollment, level="warning", at=t0 + timedelta(hours=2)
        )
        urgent_new = await create_alert(
            db, world.enrollment, level="urgent", at=t0 + timedelta(hours=1)
        )
        acknowledged = await create_alert(
            db, world.enrollment, level="urgent", at=t0 + timedelta(hours=4)
        )
        await create_alert(db, world.other_enrollment)  # another therapist's patient
        await create_alert(db, world.other_clinic_enrollment)
        await login(client, world.therapist.email)
        r = await client.post(f"/api/v1/alerts/{acknowledged}/acknowledge", json={})
        assert r.status_code == 200

        r = await client.get("/api/v1/alerts")
        assert r.status_code == 200
        assert [a["id"] for a in r.json()] == [urgent_new, urgent_old, warning, info, acknowledged]
        first = r.json()[0]
        assert first["patient"] == {
            "id": world.patient.id,
            "full_name": world.patient_user.full_name,
        }
        assert first["level"] == "urgent" and first["acknowledged_at"] is None

        r = await client.get("/api/v1/alerts", params={"status": "open"})
        assert [a["id"] for a in r.json()] == [urgent_new, urgent_old, warning, info]
        r = await client.get("/api/v1/alerts", params={"status": "acknowledged"})
        assert [a["id"] for a in r.json()] == [acknowledged]
        assert (await client.get("/api/v1/alerts", params={"status": "x"})).status_code == 422

    async def test_admin_sees_the_clinics_alerts_without_notes(self, client_factory, db, clock):
        world = await build_world(db, clock.now())
        mine = await create_alert(db, world.enrollment)
        theirs = await create_alert(db, world.other_enrollment)
        await create_alert(db, world.other_clinic_enrollment)
        therapist = client_factory()
        await login(therapist, world.therapist.email)
        r = await therapist.post(
            f"/api/v1/alerts/{mine}/acknowledge", json={"note": "Phoned; safe plan agreed"}
        )
        assert r.json()["note"] == "Phoned; safe plan agreed"
        admin = client_factory()
        await login(admin, world.admin.email)
        r = await admin.get("/api/v1/alerts")
        assert r.status_code == 200
        assert {a["id"] for a in r.json()} == {mine, theirs}
        assert "safe plan" not in r.text
        assert all(a["note"] is None for a in r.json())

    async def test_patients_may_not_list_alerts(self, client, db, clock):
        world = await build_world(db, clock.now())
        await login(client, world.patient_user.email)
        assert (await client.get("/api/v1/alerts")).status_code == 403

    async def test_each_alert_shown_is_audited(self, client, db, clock):
        world = await build_world(db, clock.now())
        a = await create_alert(db, world.enrollment)
        b = await create_alert(db, world.enrollment, level="info")
        await login(client, world.therapist.email)
        await client.get("/api/v1/alerts")
        rows = (
            await db.execute(
                select(AuditEvent.action, AuditEvent.resource_id, AuditEvent.patient_id).where(
                    AuditEvent.resource_type == "risk_alert"
                )
            )
        ).all()
        assert sorted(rows) == sorted(
            [("list", str(a), world.patient.id), ("list", str(b), world.patient.id)]
        )

    async def test_statement_count_does_not_grow_with_alerts(self, client, db, clock, engine):
        world = await build_world(db, clock.now())
        await login(client, world.therapist.email)
        counts = []
        for target in (2, 30):
            existing = len((await client.get("/api/v1/alerts")).json())
            for i in range(target - existing):
                _, _, enrollment = await create_enrollment(
                    db, world.clinic, world.therapist, clock.now(), name=f"Alert Many{target}-{i}"
                )
                await create_alert(db, enrollment, level=("urgent", "warning", "info")[i % 3])
            with count_statements(engine) as log:
                r = await client.get("/api/v1/alerts")
            assert len(r.json()) == target
            counts.append(log.count)
        assert counts[0] == counts[1], counts


class TestAcknowledge:
    async def test_assigned_therapist_acknowledges_with_an_encrypted_note(
        self, client, db, clock, app
    ):
        world = await build_world(db, clock.now())
        alert_id = await create_alert(db, world.enrollment)
        await login(client, world.therapist.email)
        r = await client.post(
            f"/api/v1/alerts/{alert_id}/acknowledge", json={"note": "  Called, she is safe.  "}
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["acknowledged_at"] is not None
        assert body["acknowledged_by"] == {
            "id": world.therapist.id,
            "full_name": world.therapist.full_name,
        }
        assert body["note"] == "Called, she is safe."
        stored = await db.scalar(
            select(RiskAlert)
            .where(RiskAlert.id == alert_id)
            .execution_options(populate_existing=True)
        )
        assert stored.acknowledged_by_id == world.therapist.id
        assert "safe" not in stored.action_note_encrypted
        assert app.state.cipher.decrypt(stored.action_note_encrypted) == "Called, she is safe."
        audit = (
            await db.execute(
                select(AuditEvent.action, AuditEvent.patient_id).where(
                    AuditEvent.resource_type == "risk_alert",
                    AuditEvent.resource_id == str(alert_id),
                )
            )
        ).all()
        assert audit == [("acknowledge", world.patient.id)]

    async def test_twice_is_409(self, client, db, clock):
        world = await build_world(db, clock.now())
        alert_id = await create_alert(db, world.enrollment)
        await login(client, world.therapist.email)
        assert (
            await client.post(f"/api/v1/alerts/{alert_id}/acknowledge", json={})
        ).status_code == 200
        r = await client.post(f"/api/v1/alerts/{alert_id}/acknowledge", json={"note": "again"})
        assert r.status_code == 409 and r.json()["code"] == "already_acknowledged"

    async def test_another_therapists_alert_is_404_and_unchanged(self, client_factory, db, clock):
        world = await build_world(db, clock.now())
        alert_id = await create_alert(db, world.enrollment)
        other_clinic_alert = await create_alert(db, world.other_clinic_enrollment)
        other = client_factory()
        await login(other, world.other_therapist.email)
        for target in (alert_id, other_clinic_alert, 999999):
            r = await other.post(f"/api/v1/alerts/{target}/acknowledge", json={})
            assert r.status_code == 404 and r.json() == {
                "detail": "Alert not found.",
                "code": "not_found",
            }
        stored = await db.scalar(select(RiskAlert.acknowledged_at).where(RiskAlert.id == alert_id))
        assert stored is None

    async def test_admins_cannot_acknowledge(self, client, db, clock):
        world = await build_world(db, clock.now())
        alert_id = await create_alert(db, world.enrollment)
        await login(client, world.admin.email)
        assert (
            await client.post(f"/api/v1/alerts/{alert_id}/acknowledge", json={})
        ).status_code == 403

    async def test_an_overlong_note_is_422(self, client, db, clock):
        world = await build_world(db, clock.now())
        alert_id = await create_alert(db, world.enrollment)
        await login(client, world.therapist.email)
        r = await client.post(f"/api/v1/alerts/{alert_id}/acknowledge", json={"note": "x" * 1001})
        assert r.status_code == 422
        r = await client.post(f"/api/v1/alerts/{alert_id}/acknowledge", json={"extra": 1})
        assert r.status_code == 422


class TestTherapistHome:
    async def test_open_alerts_are_at_the_top_urgent_first(self, client, db, clock):
        world = await build_world(db, clock.now())
        await create_alert(db, world.enrollment, level="info", reason="Info reason here")
        await create_alert(db, world.enrollment, level="urgent", reason="Urgent reason here")
        await create_alert(db, world.other_enrollment, reason="Not my patient")
        await login(client, world.therapist.email)
        r = await client.get("/therapist")
        assert r.status_code == 200
        html = r.text
        assert html.index("Risk alerts") < html.index("<table")
        assert html.index("Urgent reason here") < html.index("Info reason here")
        assert "Not my patient" not in html
        assert 'action="/therapist/alerts/' in html
        assert "Urgent" in html  # the level is written out, not shown by colour alone

    async def test_no_alert_section_without_open_alerts(self, client, db, clock):
        world = await build_world(db, clock.now())
        await login(client, world.therapist.email)
        r = await client.get("/therapist")
        assert r.status_code == 200 and "Risk alerts" not in r.text

    async def test_acknowledge_form_redirects_and_removes_the_alert(self, client, db, clock, app):
        world = await build_world(db, clock.now())
        alert_id = await create_alert(db, world.enrollment, reason="Urgent reason here")
        token = await login(client, world.therapist.email)
        r = await client.post(
            f"/therapist/alerts/{alert_id}/acknowledge",
            data={"csrf_token": token, "note": "Rang the patient"},
        )
        assert r.status_code == 303 and r.headers["location"] == "/therapist#alerts"
        home = await client.get("/therapist")
        assert "Urgent reason here" not in home.text
        stored = await db.scalar(
            select(RiskAlert.action_note_encrypted).where(RiskAlert.id == alert_id)
        )
        assert app.state.cipher.decrypt(stored) == "Rang the patient"

    async def test_next_may_only_point_to_a_therapist_page(self, client, db, clock):
        world = await build_world(db, clock.now())
        first = await create_alert(db, world.enrollment)
        second = await create_alert(db, world.enrollment)
        await login(client, world.therapist.email)
        r = await client.post(
            f"/therapist/alerts/{first}/acknowledge",
            data={"next": f"/therapist/patients/{world.enrollment.id}"},
        )
        assert r.headers["location"] == f"/therapist/patients/{world.enrollment.id}#alerts"
        r = await client.post(
            f"/therapist/alerts/{second}/acknowledge", data={"next": "https://evil.example/x"}
        )
        assert r.headers["location"] == "/therapist#alerts"

    async def test_form_errors_keep_the_typed_note(self, client, db, clock):
        world = await build_world(db, clock.now())
        alert_id = await create_alert(db, world.enrollment)
        await login(client, world.therapist.email)
        typed = "y" * 1001
        r = await client.post(f"/therapist/alerts/{alert_id}/acknowledge", data={"note": typed})
        assert r.status_code == 422
        assert typed in r.text
        assert f'aria-describedby="e-note-{alert_id} h-note-{alert_id}"' in r.text
        assert f'id="e-note-{alert_id}"' in r.text

    async def test_acknowledging_twice_from_the_page_says_so(self, client, db, clock):
        world = await build_world(db, clock.now())
        alert_id = await create_alert(db, world.enrollment)
        await login(client, world.therapist.email)
        assert (
            await client.post(f"/therapist/alerts/{alert_id}/acknowledge", data={})
        ).status_code == 303
        r = await client.post(f"/therapist/alerts/{alert_id}/acknowledge", data={})
        assert r.status_code == 409 and "already been acknowledged" in r.text

    async def test_statement_count_of_the_home_does_not_grow_with_alerts(
        self, client, db, clock, engine
    ):
        world = await build_world(db, clock.now())
        await login(client, world.therapist.email)
        counts = []
        for target in (2, 30):
            existing = (await client.get("/therapist")).text.count('class="ack-form"')
            for i in range(target - existing):
                _, _, enrollment = await create_enrollment(
                    db, world.clinic, world.therapist, clock.now(), name=f"Home Many{target}-{i}"
                )
                await create_alert(db, enrollment, level=("urgent", "warning")[i % 2])
            with count_statements(engine) as log:
                r = await client.get("/therapist")
            assert r.text.count('class="ack-form"') == target
            counts.append(log.count)
        assert counts[0] == counts[1], counts
