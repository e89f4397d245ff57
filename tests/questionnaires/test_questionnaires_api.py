"""Answering questionnaires over the API: scoring, storage, bad input, risk, history by role."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from app.adherence.models import AdherenceEvent
from app.audit.models import AuditEvent
from app.questionnaires.models import QuestionnaireResponse, RiskAlert
from tests.factories import build_world, login
from tests.questionnaires.helpers import gad7, phq9


def url(enrollment) -> str:
    return f"/api/v1/enrollments/{enrollment.id}/questionnaires"


async def later(client, clock, email: str, days: float) -> None:
    """Move the clock on and log in again (sessions time out when idle)."""
    clock.advance(timedelta(days=days))
    await login(client, email)


class TestInstrument:
    async def test_any_user_sees_items_options_and_the_wording_kind(self, client, db, clock):
        world = await build_world(db, clock.now())
        await login(client, world.therapist.email)
        r = await client.get("/api/v1/instruments/phq9")
        assert r.status_code == 200
        body = r.json()
        assert body["wording"] == "summary"
        assert "own words" in body["wording_notice"]
        assert body["recall"].startswith("Over the last 2 weeks")
        assert [i["id"] for i in body["items"]] == [f"q{i}" for i in range(1, 10)]
        assert [o["value"] for o in body["items"][8]["options"]] == [0, 1, 2, 3]
        assert body["bands"][0] == {"min": 0, "max": 4, "label": "minimal"}
        assert (body["min_total"], body["max_total"]) == (0, 27)
        assert "risk" not in body

    async def test_unknown_instrument_is_404(self, client, db, clock):
        world = await build_world(db, clock.now())
        await login(client, world.patient_user.email)
        r = await client.get("/api/v1/instruments/nope")
        assert r.status_code == 404 and r.json()["code"] == "not_found"


class TestSubmit:
    async def test_baseline_is_scored_stored_and_logged(self, client, db, clock):
        world = await build_world(db, clock.now())
        await login(client, world.patient_user.email)
        r = await client.post(url(world.enrollment), json={"instrument": "phq9", "answers": phq9()})
        assert r.status_code == 201, r.text
        body = r.json()
        assert body["total"] == 8 and body["max_total"] == 27
        assert body["occasion"] == "baseline" and body["week"] == 0
        assert body["band"] == "a lower range"  # neutral words, never "mild"
        assert body["crisis"] is None and body["therapist_notified"] is False

        stored = (await db.scalars(select(QuestionnaireResponse))).one()
        assert (stored.instrument, stored.total, stored.band, stored.occasion) == (
            "phq9",
            8,
            "mild",
            "baseline",
        )
        assert stored.answers == phq9()
        events = (
            await db.execute(
                select(AdherenceEvent.kind, AdherenceEvent.detail).where(
                    AdherenceEvent.enrollment_id == world.enrollment.id,
                    AdherenceEvent.kind != "login",
                )
            )
        ).all()
        assert events == [
            (
                "questionnaire_completed",
                {"instrument": "phq9", "occasion": "baseline", "week": 0},
            )
        ]
        audit = (
            await db.execute(
                select(AuditEvent.action, AuditEvent.resource_type, AuditEvent.patient_id).where(
                    AuditEvent.actor_user_id == world.patient_user.id,
                    AuditEvent.resource_type == "questionnaire_response",
                )
            )
        ).all()
        assert audit == [("create", "questionnaire_response", world.patient.id)]

    async def test_answering_twice_in_a_week_is_not_due(self, client, db, clock):
        world = await build_world(db, clock.now())
        await login(client, world.patient_user.email)
        body = {"instrument": "phq9", "answers": phq9()}
        assert (await client.post(url(world.enrollment), json=body)).status_code == 201
        await later(client, clock, world.patient_user.email, 2)
        r = await client.post(url(world.enrollment), json=body)
        assert r.status_code == 409 and r.json()["code"] == "not_due"
        assert r.json()["detail"]["due"] == ["gad7"]
        await later(client, clock, world.patient_user.email, 5)
        r = await client.post(url(world.enrollment), json=body)
        assert r.status_code == 201 and (r.json()["occasion"], r.json()["week"]) == ("weekly", 2)

    async def test_an_instrument_outside_the_program_is_not_due(self, client, db, clock):
        world = await build_world(db, clock.now())
        await login(client, world.patient_user.email)
        r = await client.post(
            url(world.enrollment), json={"instrument": "audit", "answers": {"q1": 0}}
        )
        assert r.status_code == 409 and r.json()["code"] == "not_due"

    async def test_unknown_instrument_is_422(self, client, db, clock):
        world = await build_world(db, clock.now())
        await login(client, world.patient_user.email)
        r = await client.post(url(world.enrollment), json={"instrument": "zzz", "answers": {}})
        assert r.status_code == 422 and r.json()["code"] == "unknown_instrument"

    async def test_missing_and_out_of_range_answers_list_each_problem(self, client, db, clock):
        world = await build_world(db, clock.now())
        await login(client, world.patient_user.email)
        answers = phq9()
        del answers["q2"]
        answers["q3"] = 7
        answers["q4"] = "2"
        answers["q5"] = True
        answers["q99"] = 1
        r = await client.post(
            url(world.enrollment), json={"instrument": "phq9", "answers": answers}
        )
        assert r.status_code == 422
        assert r.json()["code"] == "invalid_answers"
        fields = [e["field"] for e in r.json()["detail"]["errors"]]
        assert sorted(fields) == [
            "answers.q2",
            "answers.q3",
            "answers.q4",
            "answers.q5",
            "answers.q99",
        ]
        assert await db.scalar(select(QuestionnaireResponse.id)) is None
        assert (
            await db.scalar(select(AdherenceEvent.id).where(AdherenceEvent.kind != "login")) is None
        )

    async def test_malformed_bodies_are_422_not_500(self, client, db, clock):
        world = await build_world(db, clock.now())
        await login(client, world.patient_user.email)
        for body in (
            {},
            {"instrument": "phq9"},
            {"instrument": "phq9", "answers": []},
            {"instrument": "phq9", "answers": phq9(), "total": 0},
            {"instrument": "phq9", "answers": {f"x{i}": 0 for i in range(200)}},
        ):
            r = await client.post(url(world.enrollment), json=body)
            assert r.status_code == 422, (body, r.text)

    async def test_idempotency_key_replays_the_first_answer(self, client, db, clock):
        world = await build_world(db, clock.now())
        await login(client, world.patient_user.email)
        body = {"instrument": "gad7", "answers": gad7(2)}
        headers = {"Idempotency-Key": "abc-1"}
        first = await client.post(url(world.enrollment), json=body, headers=headers)
        again = await client.post(url(world.enrollment), json=body, headers=headers)
        assert first.status_code == again.status_code == 201
        assert again.headers.get("Idempotent-Replayed") == "true"
        assert again.json() == first.json()
        assert len((await db.scalars(select(QuestionnaireResponse))).all()) == 1

    async def test_staff_and_other_patients_cannot_answer(self, client_factory, db, clock):
        world = await build_world(db, clock.now())
        body = {"instrument": "phq9", "answers": phq9()}
        other = client_factory()
        await login(other, world.other_patient_user.email)
        r = await other.post(url(world.enrollment), json=body)
        assert r.status_code == 404
        therapist = client_factory()
        await login(therapist, world.therapist.email)
        assert (await therapist.post(url(world.enrollment), json=body)).status_code == 403


class TestRisk:
    async def test_self_harm_answer_raises_an_urgent_alert_and_returns_crisis_contacts(
        self, client, db, clock
    ):
        world = await build_world(db, clock.now())
        world.clinic.crisis_line_name = "Crisis Helpline"
        await db.commit()
        await login(client, world.patient_user.email)
        r = await client.post(
            url(world.enrollment), json={"instrument": "phq9", "answers": phq9(q9=1, rest=0)}
        )
        assert r.status_code == 201, r.text
        crisis = r.json()["crisis"]
        assert crisis["emergency_number"] == "112"
        assert crisis["crisis_line_name"] == "Crisis Helpline"
        assert crisis["crisis_line_number"] == "0800 100 100"
        assert crisis["watched_around_the_clock"] is False
        assert crisis["therapist_notified"] is True
        assert "not watched around the clock" in crisis["message"]
        assert r.json()["therapist_notified"] is True

        alert = (await db.scalars(select(RiskAlert))).one()
        assert alert.level == "urgent" and alert.enrollment_id == world.enrollment.id
        assert alert.source == "questionnaire" and alert.source_id == r.json()["id"]
        assert "self-harm" in alert.reason and alert.acknowledged_at is None
        kinds = (
            await db.scalars(
                select(AdherenceEvent.kind)
                .where(
                    AdherenceEvent.enrollment_id == world.enrollment.id,
                    AdherenceEvent.kind != "login",
                )
                .order_by(AdherenceEvent.id)
            )
        ).all()
        assert kinds == ["questionnaire_completed", "alert_raised"]

    async def test_no_self_harm_answer_no_alert(self, client, db, clock):
        world = await build_world(db, clock.now())
        await login(client, world.patient_user.email)
        r = await client.post(
            url(world.enrollment), json={"instrument": "phq9", "answers": phq9(q9=0, rest=3)}
        )
        assert r.status_code == 201 and r.json()["crisis"] is None
        assert await db.scalar(select(RiskAlert.id)) is None

    async def test_the_clinics_own_emergency_number_is_used(self, client, db, clock):
        world = await build_world(db, clock.now())
        world.clinic.emergency_number = "911"
        await db.commit()
        await login(client, world.patient_user.email)
        r = await client.post(
            url(world.enrollment), json={"instrument": "phq9", "answers": phq9(q9=3)}
        )
        assert r.json()["crisis"]["emergency_number"] == "911"


async def answer(client, enrollment, code, answers, clock, days=0, email=None):
    if days:
        await later(client, clock, email, days)
    r = await client.post(url(enrollment), json={"instrument": code, "answers": answers})
    assert r.status_code == 201, r.text
    return r.json()


class TestHistory:
    async def _history(self, client_factory, db, clock):
        world = await build_world(db, clock.now())
        patient = client_factory()
        await login(patient, world.patient_user.email)
        await answer(patient, world.enrollment, "phq9", phq9(rest=2), clock)  # 16 baseline
        await answer(patient, world.enrollment, "gad7", gad7(1), clock)
        await answer(
            patient, world.enrollment, "phq9", phq9(rest=1), clock, 7, world.patient_user.email
        )  # 8
        return world, patient

    async def test_therapist_sees_labels_answers_and_reliable_change(
        self, client_factory, db, clock
    ):
        world, _ = await self._history(client_factory, db, clock)
        therapist = client_factory()
        await login(therapist, world.therapist.email)
        r = await therapist.get(url(world.enrollment))
        assert r.status_code == 200
        body = r.json()
        assert body["view"] == "therapist"
        phq = next(i for i in body["instruments"] if i["code"] == "phq9")
        assert [(e["occasion"], e["total"], e["band"]) for e in phq["entries"]] == [
            ("baseline", 16, "moderately severe"),
            ("weekly", 8, "mild"),
        ]
        assert phq["entries"][0]["answers"]["q1"] == 2
        assert phq["reliable_change"] == {
            "baseline_total": 16,
            "latest_total": 8,
            "change": -8,
            "threshold": 6.0,
            "result": "improved",
        }
        gad = next(i for i in body["instruments"] if i["code"] == "gad7")
        assert gad["completed"] == 1 and gad["reliable_change"] is None

    async def test_reliable_deterioration_and_no_change(self, client_factory, db, clock):
        world = await build_world(db, clock.now())
        patient = client_factory()
        await login(patient, world.patient_user.email)
        await answer(patient, world.enrollment, "phq9", phq9(rest=0), clock)  # 0
        await answer(
            patient,
            world.enrollment,
            "phq9",
            phq9(rest=0) | {"q1": 3},
            clock,
            7,
            world.patient_user.email,
        )
        therapist = client_factory()
        await login(therapist, world.therapist.email)
        phq = next(
            i
            for i in (await therapist.get(url(world.enrollment))).json()["instruments"]
            if i["code"] == "phq9"
        )
        assert phq["reliable_change"]["result"] == "no_reliable_change"
        await answer(
            patient, world.enrollment, "phq9", phq9(rest=1), clock, 7, world.patient_user.email
        )  # 8
        await login(therapist, world.therapist.email)
        phq = next(
            i
            for i in (await therapist.get(url(world.enrollment))).json()["instruments"]
            if i["code"] == "phq9"
        )
        assert phq["reliable_change"]["result"] == "deteriorated"
        assert phq["reliable_change"]["change"] == 8

    async def test_patient_sees_neutral_words_and_no_reliable_change(
        self, client_factory, db, clock
    ):
        world, patient = await self._history(client_factory, db, clock)
        body = (await patient.get(url(world.enrollment))).json()
        assert body["view"] == "patient"
        phq = next(i for i in body["instruments"] if i["code"] == "phq9")
        bands = [e["band"] for e in phq["entries"]]
        assert bands == ["a higher range", "a lower range"]
        assert phq["reliable_change"] is None

    async def test_admins_see_counts_never_scores_or_answers(self, client_factory, db, clock):
        world, _ = await self._history(client_factory, db, clock)
        admin = client_factory()
        await login(admin, world.admin.email)
        r = await admin.get(url(world.enrollment))
        assert r.status_code == 200
        body = r.json()
        assert body["view"] == "admin"
        counts = {i["code"]: i["completed"] for i in body["instruments"]}
        assert counts == {"phq9": 2, "gad7": 1}
        for instrument in body["instruments"]:
            assert instrument["entries"] is None and instrument["reliable_change"] is None
        text = r.text
        for word in ("moderately severe", "mild", '"answers"', '"total"'):
            assert word not in text

    async def test_history_reads_are_audited_and_scoped(self, client_factory, db, clock):
        world, _ = await self._history(client_factory, db, clock)
        therapist = client_factory()
        await login(therapist, world.therapist.email)
        await therapist.get(url(world.enrollment))
        rows = (
            await db.execute(
                select(AuditEvent.action, AuditEvent.patient_id).where(
                    AuditEvent.actor_user_id == world.therapist.id,
                    AuditEvent.resource_type == "questionnaire_response",
                )
            )
        ).all()
        assert rows == [("read", world.patient.id)]
        other = client_factory()
        await login(other, world.other_therapist.email)
        assert (await other.get(url(world.enrollment))).status_code == 404
