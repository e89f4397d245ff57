"""Enrolling patients, therapists, lists and changes over the JSON API."""

from __future__ import annotations

from sqlalchemy import func, select

from app.accounts.models import Role, User
from app.audit.models import AuditEvent
from app.clinics.models import Enrollment
from tests.factories import build_world, create_enrollment, login
from tests.querycount import count_statements


def enrollment_body(world, **overrides):
    body = {
        "full_name": "Kalle Koe",
        "email": "kalle.koe@example.org",
        "phone": "+358 40 123 4567",
        "timezone": "Europe/Helsinki",
        "program": "insomnia",
        "therapist_id": world.therapist.id,
    }
    body.update(overrides)
    return body


class TestEnroll:
    async def test_admin_enrolls_a_patient_with_an_invitation(self, client, db, clock):
        world = await build_world(db, clock.now())
        await login(client, world.admin.email)
        r = await client.post("/api/v1/enrollments", json=enrollment_body(world))
        assert r.status_code == 201, r.text
        data = r.json()
        assert data["status"] == "invited" and data["program"] == "insomnia"
        assert data["therapist"]["id"] == world.therapist.id
        assert data["invitation_url"].startswith("http://test/invite/")
        assert r.headers["Location"] == f"/api/v1/enrollments/{data['id']}"
        stored = await db.get(Enrollment, data["id"])
        assert stored is not None and stored.clinic_id == world.clinic.id
        audit_rows = await db.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.resource_type == "enrollment", AuditEvent.action == "create")
        )
        assert audit_rows == 1

    async def test_duplicate_email_is_409(self, client, db, clock):
        world = await build_world(db, clock.now())
        await login(client, world.admin.email)
        assert (
            await client.post("/api/v1/enrollments", json=enrollment_body(world))
        ).status_code == 201
        again = await client.post(
            "/api/v1/enrollments", json=enrollment_body(world, email="KALLE.KOE@example.org")
        )
        assert again.status_code == 409 and again.json()["code"] == "email_taken"

    async def test_unknown_program_is_422_naming_the_field(self, client, db, clock):
        world = await build_world(db, clock.now())
        await login(client, world.admin.email)
        r = await client.post(
            "/api/v1/enrollments", json=enrollment_body(world, program="astrology")
        )
        assert r.status_code == 422
        assert r.json()["detail"][0]["field"] == "program"
        assert "depression" in r.json()["detail"][0]["message"]

    async def test_therapist_from_another_clinic_is_422(self, client, db, clock):
        world = await build_world(db, clock.now())
        await login(client, world.admin.email)
        for therapist_id in (world.other_clinic_therapist.id, world.admin.id, 999_999):
            r = await client.post(
                "/api/v1/enrollments", json=enrollment_body(world, therapist_id=therapist_id)
            )
            assert r.status_code == 422 and r.json()["code"] == "invalid_therapist", therapist_id

    async def test_mass_assignment_is_refused(self, client, db, clock):
        world = await build_world(db, clock.now())
        await login(client, world.admin.email)
        for extra in (
            {"role": "admin"},
            {"clinic_id": world.other_clinic.id},
            {"status": "active"},
        ):
            r = await client.post("/api/v1/enrollments", json={**enrollment_body(world), **extra})
            assert r.status_code == 422, extra
        assert (
            await db.scalar(
                select(func.count()).select_from(User).where(User.email == "kalle.koe@example.org")
            )
            == 0
        )

    async def test_bad_timezone_and_email_are_422(self, client, db, clock):
        world = await build_world(db, clock.now())
        await login(client, world.admin.email)
        r = await client.post(
            "/api/v1/enrollments",
            json=enrollment_body(world, timezone="Mars/Olympus", email="not-an-email"),
        )
        assert r.status_code == 422
        assert {e["field"] for e in r.json()["detail"]} == {"timezone", "email"}

    async def test_idempotency_key_replays_the_first_answer(self, client, db, clock):
        world = await build_world(db, clock.now())
        await login(client, world.admin.email)
        headers = {"Idempotency-Key": "enroll-kalle-1"}
        first = await client.post(
            "/api/v1/enrollments", json=enrollment_body(world), headers=headers
        )
        second = await client.post(
            "/api/v1/enrollments", json=enrollment_body(world), headers=headers
        )
        assert first.status_code == second.status_code == 201
        assert first.json() == second.json()
        assert second.headers.get("Idempotent-Replayed") == "true"
        count = await db.scalar(
            select(func.count()).select_from(Enrollment).where(Enrollment.program == "insomnia")
        )
        assert count == 1
        different = await client.post(
            "/api/v1/enrollments",
            json=enrollment_body(world, email="other@example.org"),
            headers=headers,
        )
        assert different.status_code == 422 and different.json()["code"] == "idempotency_mismatch"


class TestTherapists:
    async def test_admin_creates_and_lists_therapists(self, client, db, clock):
        world = await build_world(db, clock.now())
        await login(client, world.admin.email)
        r = await client.post(
            "/api/v1/therapists",
            json={"full_name": "Tiina Terapeutti", "email": "tiina@example.org"},
        )
        assert r.status_code == 201 and "/invite/" in r.json()["invitation_url"]
        listed = await client.get("/api/v1/therapists")
        names = [t["full_name"] for t in listed.json()]
        assert "Tiina Terapeutti" in names
        assert world.other_clinic_therapist.full_name not in names
        caseloads = {t["id"]: t["active_patients"] for t in listed.json()}
        assert caseloads[world.therapist.id] == 1

    async def test_new_therapist_sets_password_through_invitation(self, client_factory, db, clock):
        world = await build_world(db, clock.now())
        admin = client_factory()
        await login(admin, world.admin.email)
        url = (
            await admin.post(
                "/api/v1/therapists",
                json={"full_name": "Tiina Terapeutti", "email": "tiina@example.org"},
            )
        ).json()["invitation_url"]
        t = client_factory()
        r = await t.post(
            f"/api/v1/invitations/{url.rsplit('/', 1)[1]}/accept",
            json={"password": "several calm words"},
        )
        assert r.status_code == 200 and r.json()["role"] == "therapist"
        user = await db.scalar(select(User).where(User.email == "tiina@example.org"))
        assert user is not None and user.role == Role.THERAPIST


class TestListAndUpdate:
    async def test_each_role_sees_only_its_own(self, client_factory, db, clock):
        world = await build_world(db, clock.now())
        expectations = {
            world.admin.email: {world.enrollment.id, world.other_enrollment.id},
            world.therapist.email: {world.enrollment.id},
            world.patient_user.email: {world.enrollment.id},
            world.other_admin.email: {world.other_clinic_enrollment.id},
        }
        for email, expected in expectations.items():
            client = client_factory()
            await login(client, email)
            r = await client.get("/api/v1/enrollments")
            assert {e["id"] for e in r.json()["items"]} == expected, email
            assert r.json()["total"] == len(expected)

    async def test_filters_and_pagination(self, client, db, clock):
        world = await build_world(db, clock.now())
        for i in range(6):
            await create_enrollment(
                db, world.clinic, world.therapist, clock.now(), program="ocd", name=f"Olli Ocd{i}"
            )
        await db.commit()
        await login(client, world.admin.email)
        r = await client.get(
            "/api/v1/enrollments", params={"program": "ocd", "per_page": 4, "page": 2}
        )
        assert r.json()["total"] == 6 and len(r.json()["items"]) == 2
        r = await client.get("/api/v1/enrollments", params={"q": "ocd3"})
        assert [e["patient"]["full_name"] for e in r.json()["items"]] == ["Olli Ocd3"]
        r = await client.get(
            "/api/v1/enrollments", params={"therapist_id": world.other_therapist.id}
        )
        assert {e["id"] for e in r.json()["items"]} == {world.other_enrollment.id}
        assert (
            await client.get("/api/v1/enrollments", params={"status": "nonsense"})
        ).status_code == 422
        assert (
            await client.get("/api/v1/enrollments", params={"per_page": 1000})
        ).status_code == 422

    async def test_list_statement_count_does_not_grow_with_rows(self, client, db, clock, engine):
        world = await build_world(db, clock.now())
        await login(client, world.admin.email)
        counts = []
        for target in (5, 50):
            existing = (await client.get("/api/v1/enrollments")).json()["total"]
            for i in range(target - existing):
                await create_enrollment(
                    db, world.clinic, world.therapist, clock.now(), name=f"Pat Many{target}-{i}"
                )
            await db.commit()
            with count_statements(engine) as log:
                r = await client.get("/api/v1/enrollments", params={"per_page": 100})
            assert len(r.json()["items"]) == target
            counts.append(log.count)
        assert counts[0] == counts[1], counts
        assert counts[0] <= 6, counts

    async def test_reads_are_audited_once_per_patient_shown(self, client, db, clock):
        world = await build_world(db, clock.now())
        await login(client, world.therapist.email)
        await client.get(f"/api/v1/enrollments/{world.enrollment.id}")
        await client.get("/api/v1/enrollments")
        rows = (
            await db.execute(
                select(AuditEvent.action, AuditEvent.patient_id).where(
                    AuditEvent.actor_user_id == world.therapist.id,
                    AuditEvent.resource_type == "enrollment",
                )
            )
        ).all()
        assert sorted(rows) == [("list", world.patient.id), ("read", world.patient.id)]

    async def test_reassign_pause_resume_close(self, client, db, clock):
        world = await build_world(db, clock.now())
        await login(client, world.admin.email)
        url = f"/api/v1/enrollments/{world.enrollment.id}"
        r = await client.patch(url, json={"therapist_id": world.other_therapist.id})
        assert r.status_code == 200 and r.json()["therapist"]["id"] == world.other_therapist.id
        assert (await client.patch(url, json={"status": "paused"})).json()["status"] == "paused"
        assert (await client.patch(url, json={"status": "active"})).json()["status"] == "active"
        closed = await client.patch(url, json={"status": "closed"})
        assert closed.json()["status"] == "closed" and closed.json()["ended_at"] is not None
        reopen = await client.patch(url, json={"status": "active"})
        assert reopen.status_code == 409 and "closed" in reopen.json()["detail"]

    async def test_patch_refuses_unknown_fields_and_foreign_therapists(self, client, db, clock):
        world = await build_world(db, clock.now())
        await login(client, world.admin.email)
        url = f"/api/v1/enrollments/{world.enrollment.id}"
        assert (
            await client.patch(url, json={"clinic_id": world.other_clinic.id})
        ).status_code == 422
        assert (await client.patch(url, json={"program": "gad"})).status_code == 422
        r = await client.patch(url, json={"therapist_id": world.other_clinic_therapist.id})
        assert r.status_code == 422

    async def test_other_clinic_admin_gets_404_and_changes_nothing(self, client, db, clock):
        world = await build_world(db, clock.now())
        await login(client, world.other_admin.email)
        url = f"/api/v1/enrollments/{world.enrollment.id}"
        missing = await client.get("/api/v1/enrollments/987654")
        swapped = await client.get(url)
        assert swapped.status_code == missing.status_code == 404
        assert swapped.json() == missing.json()
        assert (await client.patch(url, json={"status": "closed"})).status_code == 404
        status = await db.scalar(
            select(Enrollment.status)
            .where(Enrollment.id == world.enrollment.id)
            .execution_options(populate_existing=True)
        )
        assert status == "active"
