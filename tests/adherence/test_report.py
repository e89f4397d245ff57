"""The clinic report against a small cohort computed by hand, its filters, and its cost."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.accounts.models import Role
from app.adherence import metrics
from app.adherence.service import EventKind
from app.adherence.sql import working_seconds_between
from app.clinics.models import EnrollmentStatus
from tests.adherence.helpers import log, message, score
from tests.conftest import START
from tests.factories import create_clinic, create_enrollment, create_user, login
from tests.querycount import count_statements

DAY = timedelta(days=1)


def at(year: int, month: int, day: int, hour: int = 0) -> datetime:
    return datetime(year, month, day, hour, tzinfo=UTC)


async def _cohort(db, now):
    """Five started depression patients (10 modules) and one not started; see each comment."""
    clinic = await create_clinic(db, now)
    clinic.timezone = "UTC"
    admin = await create_user(db, clinic, Role.ADMIN, now)
    therapist = await create_user(db, clinic, Role.THERAPIST, now)

    async def patient(status=EnrollmentStatus.ACTIVE):
        return (await create_enrollment(db, clinic, therapist, now, status=status))[2]

    # E1 completed all ten modules by day 50 (marked completed then): censored in week 7.
    e1 = await patient()
    for n in range(10):
        await log(db, e1, EventKind.MODULE_COMPLETED, now + (5 * n + 5) * DAY, module=f"m{n}")
    e1.status, e1.ended_at = EnrollmentStatus.COMPLETED, now + 50 * DAY
    # E2: three modules, last seen day 16 -> dropped out (idle 54 days) in week 2.
    e2 = await patient()
    for d in (2, 9, 16):
        await log(db, e2, EventKind.MODULE_COMPLETED, now + d * DAY, module=f"d{d}")
    # E3: five modules, last seen day 31 -> dropped out in week 4.
    e3 = await patient()
    for d in (3, 10, 17, 24, 31):
        await log(db, e3, EventKind.MODULE_COMPLETED, now + d * DAY, module=f"d{d}")
    # E4: six modules, logs in until day 69 -> falling behind the pace, censored in week 10.
    e4 = await patient()
    for d in (5, 12, 19, 26, 33, 40):
        await log(db, e4, EventKind.MODULE_COMPLETED, now + d * DAY, module=f"d{d}")
    await log(db, e4, EventKind.LOGIN, now + 69 * DAY)
    # E5: invited, never started.
    await patient(EnrollmentStatus.INVITED)
    # E6: one module on day 1, then marked dropped -> dropped out in week 0.
    e6 = await patient()
    await log(db, e6, EventKind.MODULE_COMPLETED, now + 1 * DAY, module="m1")
    e6.status, e6.ended_at = EnrollmentStatus.DROPPED, now + 2 * DAY

    # Replies (clinic in UTC; START is Monday 2 March 2026):
    # Fri 6 Mar 15:00 -> Tue 10 Mar 15:00: 2 working days (the weekend does not count).
    await message(db, e4, at(2026, 3, 6, 15), role="patient")
    await message(db, e4, at(2026, 3, 10, 15), role="therapist", functions=("autonomy",))
    # Mon 9 Mar 09:00 -> 21:00: 0.5.
    await message(db, e1, at(2026, 3, 9, 9), role="patient")
    await message(db, e1, at(2026, 3, 9, 21), role="therapist", functions=("alliance",))
    # Sat 7 Mar 10:00 -> Mon 9 Mar 12:00: counted from Monday 00:00, 0.5.
    await message(db, e2, at(2026, 3, 7, 10), role="patient")
    await message(db, e2, at(2026, 3, 9, 12), role="therapist")
    # Wed 11 Mar 10:00 (and a second message at 12:00) -> Thu 12 Mar 16:00: 1.25.
    await message(db, e3, at(2026, 3, 11, 10), role="patient")
    await message(db, e3, at(2026, 3, 11, 12), role="patient")
    await message(
        db, e3, at(2026, 3, 12, 16), role="therapist", functions=("alliance", "emotion_regulation")
    )
    # Feedback: E1 submits Mon 2 Mar 10:00, anchored feedback Wed 4 Mar 10:00: 2 working days.
    await log(db, e1, EventKind.EXERCISE_SUBMITTED, at(2026, 3, 2, 10), module="m0")
    await message(db, e1, at(2026, 3, 4, 10), role="therapist", anchored=True)

    # PHQ-9 (reliable change 6): E1 20 -> 8 improved; E2 15 -> 13 not; E4 baseline only.
    await score(db, e1, now, 20, occasion="baseline", week=0)
    await score(db, e1, now + 49 * DAY, 8)
    await score(db, e2, now, 15, occasion="baseline", week=0)
    await score(db, e2, now + 14 * DAY, 13)
    await score(db, e4, now, 12, occasion="baseline", week=0)
    await db.commit()
    return clinic, admin, therapist


async def test_report_matches_the_hand_computed_cohort(client, db, clock):
    _, admin, _ = await _cohort(db, START)
    clock.advance(70 * DAY)
    await login(client, admin.email)
    r = await client.get("/api/v1/reports/adherence")
    assert r.status_code == 200, r.text
    c = r.json()["cohort"]
    assert (c["enrollments"], c["started"], c["not_started"]) == (6, 5, 1)
    assert c["status_counts"] == {
        "on_track": 0,
        "falling_behind": 1,
        "inactive": 0,
        "dropped_out": 3,
        "completed": 1,
    }
    assert c["completion_rate"] == 0.2
    assert c["dropout_rate"] == 0.6
    # Completed at least module k, of five started: 5,4,4,3,3,2,1,1,1,1.
    assert [p["reached"] for p in c["retention"]] == [5, 4, 4, 3, 3, 2, 1, 1, 1, 1]
    assert [p["share"] for p in c["retention"]][:4] == [1.0, 0.8, 0.8, 0.6]
    # Kaplan-Meier: drops in weeks 0, 2 and 4 (at risk 5, 4, 3); censored in weeks 7 and 10.
    survival = {p["week"]: p for p in c["survival"]}
    assert [survival[w]["share_active"] for w in range(11)] == [
        0.8,
        0.8,
        0.6,
        0.6,
        0.4,
        0.4,
        0.4,
        0.4,
        0.4,
        0.4,
        0.4,
    ]
    assert (survival[2]["at_risk"], survival[4]["at_risk"], survival[8]["at_risk"]) == (4, 3, 1)
    assert c["dropout_median_week"] == 2
    assert c["dropout_mean_share_of_modules_done"] == pytest.approx(0.3)
    # Replies of 2, 0.5, 0.5 and 1.25 working days: median 0.875; all within 2 working days.
    assert c["replies"] == 4
    assert c["median_reply_working_days"] == pytest.approx(0.88, abs=0.005)
    assert c["replies_within_promise_share"] == 1.0
    assert (c["feedback_given"], c["median_feedback_working_days"]) == (1, 2.0)
    assert c["support_mix"] == {"autonomy": 1, "alliance": 2, "emotion_regulation": 1}
    assert (c["messages_from_patients"], c["messages_from_therapists"]) == (5, 5)
    # Patient-weeks: E1 50 days, E2 16, E3 31, E4 70, E6 1 = 168 days = 24 weeks.
    assert c["patient_weeks"] == 24.0
    assert c["therapist_minutes_per_patient_week"] == round(5 * 12.0 / 24, 2)
    assert c["minutes_norm"] == "below"
    [outcome] = c["outcomes"]
    assert (outcome["instrument"], outcome["patients"], outcome["reliably_improved"]) == (
        "phq9",
        2,
        1,
    )
    assert (outcome["mean_baseline"], outcome["mean_latest"]) == (17.5, 10.5)
    [group] = r.json()["groups"]
    assert group["key"] == "depression" and group["status_counts"] == c["status_counts"]


async def test_report_per_therapist_and_filters(client, db, clock):
    _, admin, therapist = await _cohort(db, START)
    clock.advance(70 * DAY)
    await login(client, admin.email)
    r = await client.get("/api/v1/reports/adherence", params={"group_by": "therapist"})
    assert [g["label"] for g in r.json()["groups"]] == [therapist.full_name]
    r = await client.get("/api/v1/reports/adherence", params={"program": "gad"})
    assert r.json()["cohort"]["enrollments"] == 0
    r = await client.get(
        "/api/v1/reports/adherence",
        params={"enrolled_from": "2026-03-03", "enrolled_to": "2026-12-31"},
    )
    assert r.json()["cohort"]["enrollments"] == 0
    r = await client.get(
        "/api/v1/reports/adherence", params={"therapist_id": therapist.id, "program": "depression"}
    )
    assert r.json()["cohort"]["enrollments"] == 6


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"program": "astrology"}, "unknown_program"),
        ({"therapist_id": "999999"}, "unknown_therapist"),
        ({"enrolled_from": "2026-05-01", "enrolled_to": "2026-04-01"}, "reversed_period"),
        ({"group_by": "postcode"}, "validation_error"),
        ({"enrolled_from": "yesterday"}, "validation_error"),
        ({"therapist_id": "-3"}, "validation_error"),
    ],
)
async def test_bad_filters_are_422(client, db, clock, params, code):
    _, admin, _ = await _cohort(db, START)
    await login(client, admin.email)
    r = await client.get("/api/v1/reports/adherence", params=params)
    assert r.status_code == 422, r.text
    assert r.json()["code"] == code
    page = await client.get("/admin/reports", params=params)
    assert page.status_code == 422


async def test_another_clinics_therapist_is_an_unknown_filter(client, db, clock):
    _, admin, _ = await _cohort(db, START)
    _, _, other_therapist = await _cohort(db, START)
    await login(client, admin.email)
    r = await client.get("/api/v1/reports/adherence", params={"therapist_id": other_therapist.id})
    assert r.status_code == 422


async def test_report_page_renders_charts_with_text(client, db, clock):
    _, admin, _ = await _cohort(db, START)
    clock.advance(70 * DAY)
    await login(client, admin.email)
    r = await client.get("/admin/reports")
    assert r.status_code == 200
    assert r.text.count("<svg") == 2
    assert "<desc" in r.text and "week 1: 80 %" in r.text
    assert "Reports" in r.text  # the nav link


def test_working_days_skip_weekends():
    fri = at(2026, 3, 6, 15)
    assert working_seconds_between(fri, at(2026, 3, 9, 15)) == 86_400  # Fri -> Mon
    assert working_seconds_between(at(2026, 3, 7, 10), at(2026, 3, 8, 20)) == 0  # weekend only
    # Helsinki is UTC+2 in March: Friday 23:30 local is 21:30 UTC, Monday 00:00 local is
    # Sunday 22:00 UTC; half an hour of Friday counts.
    late_friday = at(2026, 3, 6, 21) + timedelta(minutes=30)
    assert working_seconds_between(late_friday, at(2026, 3, 8, 22), offset_seconds=7200) == 1800


def test_kaplan_meier_by_hand():
    counts = {(True, 0): 1, (True, 2): 1, (False, 3): 2}
    points = metrics.kaplan_meier(counts)
    assert [p.share_active for p in points] == [0.75, 0.75, 0.5, 0.5]
    assert metrics.median([3, 1, 2, 10]) == 2.5


async def _grow(db, clinic, therapist, n, now):
    for _ in range(n):
        _, _, e = await create_enrollment(db, clinic, therapist, now)
        await log(db, e, EventKind.LOGIN, now)
        await message(db, e, now, role="patient")
        await message(db, e, now + DAY, role="therapist", functions=("autonomy",))
        await score(db, e, now, 14, occasion="baseline", week=0)
        await score(db, e, now + 7 * DAY, 9)
    await db.commit()


@pytest.mark.parametrize("path", ["/api/v1/reports/adherence", "/admin/reports"])
async def test_report_statement_count_does_not_grow(client, db, clock, engine, path):
    clinic = await create_clinic(db, clock.now())
    admin = await create_user(db, clinic, Role.ADMIN, clock.now())
    therapist = await create_user(db, clinic, Role.THERAPIST, clock.now())
    await login(client, admin.email)
    counts = []
    for n in (5, 45):
        await _grow(db, clinic, therapist, n, clock.now())
        with count_statements(engine) as log_:
            r = await client.get(path)
        assert r.status_code == 200
        counts.append(log_.count)
    assert counts[0] == counts[1], counts


async def test_reply_medians_per_group_and_for_the_cohort(client, db, clock, engine):
    """Both medians come from one statement: depression waits 0.5 and 1 working day
    (median 0.75), anxiety 2 days (median 2); the cohort's three waits have median 1."""
    monday = at(2026, 3, 2, 8)
    clinic = await create_clinic(db, monday)
    clinic.timezone = "UTC"
    admin = await create_user(db, clinic, Role.ADMIN, monday)
    therapist = await create_user(db, clinic, Role.THERAPIST, monday)
    depression = (await create_enrollment(db, clinic, therapist, monday))[2]
    anxiety = (await create_enrollment(db, clinic, therapist, monday, program="gad"))[2]
    thursday = monday + 3 * DAY
    for enrollment, asked, waited in (
        (depression, monday, DAY / 2),
        (depression, thursday, DAY),
        (anxiety, monday, 2 * DAY),
    ):
        await message(db, enrollment, asked, role="patient")
        await message(db, enrollment, asked + waited, role="therapist")
    await db.commit()
    clock._now = monday + 10 * DAY
    await login(client, admin.email)
    with count_statements(engine) as sent:
        body = (await client.get("/api/v1/reports/adherence")).json()
    medians = {g["key"]: (g["replies"], g["median_reply_working_days"]) for g in body["groups"]}
    assert medians == {"depression": (2, 0.75), "gad": (1, 2.0)}
    assert (body["cohort"]["replies"], body["cohort"]["median_reply_working_days"]) == (3, 1.0)
    assert sum("support_wait" in s for s in sent.statements) == 1
