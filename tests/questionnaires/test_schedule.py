"""What is due when: baseline at the start, weekly once a week, end at completion."""

from __future__ import annotations

from datetime import timedelta

from app.clinics.models import EnrollmentStatus
from app.content.service import get_library
from app.programs.models import ModuleProgress
from app.questionnaires.models import QuestionnaireResponse
from app.questionnaires.service import due_questionnaires, plan_due, treatment_week
from tests.conftest import START, make_settings
from tests.factories import build_world, create_enrollment


def library():
    settings = make_settings()
    return get_library(settings.content_dir, settings.content_overlay)


def due_of(program: str, *, now, status="active", ended_at=None, answered=()):
    lib = library()
    return [
        (d.code, d.occasion, d.week)
        for d in plan_due(
            lib.program(program),
            lib,
            activated_at=START,
            now=now,
            status=status,
            ended_at=ended_at,
            answered=list(answered),
        )
    ]


class TestTreatmentWeek:
    def test_week_one_is_the_first_seven_days(self):
        assert treatment_week(START, START) == 1
        assert treatment_week(START, START + timedelta(days=6, hours=23)) == 1
        assert treatment_week(START, START + timedelta(days=7)) == 2
        assert treatment_week(START, START + timedelta(days=70)) == 11

    def test_a_clock_before_activation_counts_as_week_one(self):
        assert treatment_week(START, START - timedelta(days=3)) == 1


class TestPlan:
    def test_baseline_of_every_instrument_is_due_at_activation(self):
        assert due_of("depression", now=START) == [("phq9", "baseline", 0), ("gad7", "baseline", 0)]
        assert due_of("insomnia", now=START) == [("sci", "baseline", 0), ("phq9", "baseline", 0)]

    def test_the_baseline_counts_for_its_own_week(self):
        answered = [("phq9", "baseline", START), ("gad7", "baseline", START)]
        assert due_of("depression", now=START + timedelta(days=3), answered=answered) == []

    def test_weekly_instruments_are_due_each_new_week(self):
        answered = [("phq9", "baseline", START), ("gad7", "baseline", START)]
        week2 = START + timedelta(days=7)
        assert due_of("depression", now=week2, answered=answered) == [("phq9", "weekly", 2)]
        answered.append(("phq9", "weekly", week2 + timedelta(hours=1)))
        assert due_of("depression", now=week2 + timedelta(days=6), answered=answered) == []
        assert due_of("depression", now=START + timedelta(days=14), answered=answered) == [
            ("phq9", "weekly", 3)
        ]

    def test_a_missed_week_is_not_asked_twice(self):
        answered = [("phq9", "baseline", START), ("gad7", "baseline", START)]
        assert due_of("depression", now=START + timedelta(days=30), answered=answered) == [
            ("phq9", "weekly", 5)
        ]

    def test_weekly_waits_for_the_baseline(self):
        assert due_of("gad", now=START + timedelta(days=20)) == [
            ("gad7", "baseline", 0),
            ("phq9", "baseline", 0),
        ]

    def test_end_questionnaires_when_the_treatment_ends(self):
        answered = [("phq9", "baseline", START), ("gad7", "baseline", START)]
        ended = START + timedelta(days=80)
        assert due_of(
            "depression", now=ended, status="completed", ended_at=ended, answered=answered
        ) == [("phq9", "end", 12), ("gad7", "end", 12)]

    def test_a_weekly_answer_in_the_last_week_stands_as_the_end(self):
        ended = START + timedelta(days=80)
        answered = [
            ("phq9", "baseline", START),
            ("gad7", "baseline", START),
            ("phq9", "weekly", ended - timedelta(days=1)),
        ]
        assert due_of(
            "depression", now=ended, status="completed", ended_at=ended, answered=answered
        ) == [("gad7", "end", 12)]

    def test_nothing_is_due_once_the_end_is_answered_after_completion(self):
        ended = START + timedelta(days=80)
        answered = [
            ("phq9", "baseline", START),
            ("gad7", "baseline", START),
            ("phq9", "end", ended),
            ("gad7", "end", ended),
        ]
        later = ended + timedelta(days=21)
        assert (
            due_of("depression", now=later, status="completed", ended_at=ended, answered=answered)
            == []
        )

    def test_an_active_patient_keeps_the_weekly_safety_net_after_the_end(self):
        ended = START + timedelta(days=60)
        answered = [
            ("phq9", "baseline", START),
            ("gad7", "baseline", START),
            ("phq9", "end", ended),
            ("gad7", "end", ended),
        ]
        assert due_of(
            "depression", now=ended + timedelta(days=7), ended_at=ended, answered=answered
        ) == [("phq9", "weekly", 10)]

    def test_no_baseline_is_asked_after_the_end(self):
        ended = START + timedelta(days=60)
        assert due_of("depression", now=ended, ended_at=ended) == [
            ("phq9", "end", 9),
            ("gad7", "end", 9),
        ]

    def test_paused_dropped_and_closed_get_nothing(self):
        for status in ("paused", "dropped", "closed", "invited"):
            assert due_of("depression", now=START, status=status) == []


class TestDueFromTheDatabase:
    async def test_baseline_then_weekly_then_end_at_last_module(self, db, clock):
        world = await build_world(db, clock.now())
        lib = library()
        enrollment = world.enrollment
        due = await due_questionnaires(db, enrollment, lib, clock.now())
        assert [(d.code, d.occasion, d.week, d.title) for d in due] == [
            ("phq9", "baseline", 0, lib.instrument("phq9").title),
            ("gad7", "baseline", 0, lib.instrument("gad7").title),
        ]
        for code in ("phq9", "gad7"):
            db.add(
                QuestionnaireResponse(
                    enrollment_id=enrollment.id,
                    instrument=code,
                    occasion="baseline",
                    week=0,
                    answers={},
                    total=3,
                    band="minimal",
                    completed_at=clock.now(),
                )
            )
        await db.flush()
        assert await due_questionnaires(db, enrollment, lib, clock.now()) == []
        in_week_3 = clock.now() + timedelta(days=15)
        assert [
            (d.code, d.occasion, d.week)
            for d in await due_questionnaires(db, enrollment, lib, in_week_3)
        ] == [("phq9", "weekly", 3)]

        last = lib.program("depression").module_keys[-1]
        db.add(
            ModuleProgress(
                enrollment_id=enrollment.id,
                program="depression",
                module_key=last,
                position=10,
                unlocked_at=clock.now(),
                completed_at=in_week_3,
            )
        )
        await db.flush()
        assert [
            (d.code, d.occasion) for d in await due_questionnaires(db, enrollment, lib, in_week_3)
        ] == [("phq9", "end"), ("gad7", "end")]

    async def test_an_earlier_module_completed_does_not_end_the_treatment(self, db, clock):
        world = await build_world(db, clock.now())
        lib = library()
        first = lib.program("depression").module_keys[0]
        db.add(
            ModuleProgress(
                enrollment_id=world.enrollment.id,
                program="depression",
                module_key=first,
                position=1,
                completed_at=clock.now(),
            )
        )
        await db.flush()
        due = await due_questionnaires(db, world.enrollment, lib, clock.now())
        assert {d.occasion for d in due} == {"baseline"}

    async def test_completed_status_makes_the_end_due(self, db, clock):
        world = await build_world(db, clock.now())
        _, _, enrollment = await create_enrollment(
            db, world.clinic, world.therapist, clock.now(), program="gad"
        )
        enrollment.status = EnrollmentStatus.COMPLETED
        enrollment.ended_at = clock.now() + timedelta(days=40)
        await db.flush()
        due = await due_questionnaires(db, enrollment, library(), clock.now() + timedelta(days=41))
        assert [(d.code, d.occasion, d.week) for d in due] == [
            ("gad7", "end", 6),
            ("phq9", "end", 6),
        ]

    async def test_an_invited_patient_has_nothing_due(self, db, clock):
        world = await build_world(db, clock.now())
        _, _, enrollment = await create_enrollment(
            db, world.clinic, world.therapist, clock.now(), status=EnrollmentStatus.INVITED
        )
        assert await due_questionnaires(db, enrollment, library(), clock.now()) == []
