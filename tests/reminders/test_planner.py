"""The planner: each rule fires exactly when it should and not before, once per period.

All times are driven by a frozen clock. START is Monday 2026-03-02 09:00 UTC (11:00 in
Helsinki, where the test patients live); the default quiet hours are 21:00 to 08:00.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from sqlalchemy import select

from app.adherence import service as adherence
from app.clinics.models import Enrollment, EnrollmentStatus
from app.programs.models import ExerciseResponse, ModuleProgress, PacingOverride
from app.questionnaires import service as questionnaires
from app.questionnaires.models import QuestionnaireResponse, RiskAlert
from app.reminders import rules
from app.reminders.models import ReminderRuleConfig
from tests.factories import build_world, create_enrollment
from tests.querycount import count_statements
from tests.reminders.helpers import (
    deliver,
    library,
    notifications,
    plan,
    reminders,
    set_preferences,
)

DAY = timedelta(days=1)
SECOND = timedelta(seconds=1)


async def _rule_rows(database, enrollment, rule):
    return [r for r in await reminders(database, enrollment) if r.rule == rule]


class TestInactivity:
    async def test_steps_fire_at_3_7_14_days_then_only_the_therapist_is_alerted(
        self, db, database, settings, clock
    ):
        world = await build_world(db, clock.now())
        start = clock.now()
        lapse = int(start.timestamp())

        async def inactivity_periods():
            return sorted(
                {r.period for r in await _rule_rows(database, world.enrollment, "inactivity")}
            )

        await plan(database, settings, start + 3 * DAY - SECOND)
        assert await inactivity_periods() == []
        await plan(database, settings, start + 3 * DAY)
        assert await inactivity_periods() == [f"{lapse}:1"]
        rows = await _rule_rows(database, world.enrollment, "inactivity")
        assert sorted(r.channel for r in rows) == ["email", "in_app"]
        assert {r.recipient_user_id for r in rows} == {world.patient_user.id}
        assert {r.audience for r in rows} == {"patient"}

        await plan(database, settings, start + 7 * DAY - SECOND)
        assert await inactivity_periods() == [f"{lapse}:1"]
        await plan(database, settings, start + 7 * DAY)
        assert await inactivity_periods() == [f"{lapse}:1", f"{lapse}:2"]
        assert await _rule_rows(database, world.enrollment, "dropout_alert") == []

        await plan(database, settings, start + 14 * DAY - SECOND)
        assert await _rule_rows(database, world.enrollment, "dropout_alert") == []
        await plan(database, settings, start + 14 * DAY)
        assert await inactivity_periods() == [f"{lapse}:1", f"{lapse}:2", f"{lapse}:3"]
        alerts = await _rule_rows(database, world.enrollment, "dropout_alert")
        assert {(r.audience, r.recipient_user_id) for r in alerts} == {
            ("staff", world.therapist.id)
        }

        report = await deliver(database, settings, start + 14 * DAY)
        assert report.sent > 0
        risk = (
            await db.scalars(
                select(RiskAlert).where(RiskAlert.enrollment_id == world.enrollment.id)
            )
        ).all()
        assert [(a.source, a.level) for a in risk] == [("inactivity", "warning")]
        assert "14 days" in risk[0].reason
        therapist_notes = await notifications(database, world.therapist.id)
        assert [n.text for n in therapist_notes] == ["A patient in your care may need a check-in."]

        # After the last step: no more nudges and no second alert, however long the silence.
        before = len(await reminders(database, world.enrollment))
        for days in (15, 21, 30, 60):
            await plan(database, settings, start + days * DAY)
        assert len(await reminders(database, world.enrollment)) == before
        await deliver(database, settings, start + 60 * DAY)
        count = await db.scalar(
            select(RiskAlert.id).where(RiskAlert.enrollment_id == world.enrollment.id).limit(2)
        )
        assert count is not None
        assert (
            len(
                (
                    await db.scalars(
                        select(RiskAlert).where(RiskAlert.enrollment_id == world.enrollment.id)
                    )
                ).all()
            )
            == 1
        )

    async def test_activity_starts_a_new_lapse(self, db, database, settings, clock):
        world = await build_world(db, clock.now())
        start = clock.now()
        await plan(database, settings, start + 3 * DAY)
        back = start + 5 * DAY
        await adherence.record(
            db, enrollment_id=world.enrollment.id, kind=adherence.EventKind.LOGIN, at=back
        )
        await db.commit()
        await plan(database, settings, start + 7 * DAY)  # old lapse's step 2: not any more
        assert {r.period for r in await _rule_rows(database, world.enrollment, "inactivity")} == {
            f"{int(start.timestamp())}:1"
        }
        await plan(database, settings, back + 3 * DAY)
        periods = {r.period for r in await _rule_rows(database, world.enrollment, "inactivity")}
        assert f"{int(back.timestamp())}:1" in periods

    async def test_a_planner_that_was_down_sends_only_the_current_step(
        self, db, database, settings, clock
    ):
        world = await build_world(db, clock.now())
        await plan(database, settings, clock.now() + 9 * DAY)
        periods = {r.period for r in await _rule_rows(database, world.enrollment, "inactivity")}
        assert periods == {f"{int(clock.now().timestamp())}:2"}

    async def test_clinic_thresholds_apply_per_clinic(self, db, database, settings, clock):
        world = await build_world(db, clock.now())
        db.add(
            ReminderRuleConfig(
                clinic_id=world.clinic.id,
                inactivity_enabled=True,
                inactivity_days_1=2,
                inactivity_days_2=4,
                inactivity_days_3=6,
                dropout_alert_enabled=True,
                max_nudges_per_lapse=5,
                new_module_enabled=True,
                new_module_delay_minutes=60,
                questionnaire_enabled=False,
                questionnaire_after_hours=24,
                unread_message_enabled=True,
                unread_message_hours=24,
                program_time_enabled=True,
                staff_reminders_enabled=True,
                response_promise_hours=48,
                response_warning_hours=8,
                feedback_overdue_days=3,
            )
        )
        await db.commit()
        await plan(database, settings, clock.now() + 2 * DAY)
        assert await _rule_rows(database, world.enrollment, "inactivity")
        assert await _rule_rows(database, world.enrollment, "questionnaire_due") == []
        # The other clinic keeps the defaults: nothing after two days.
        assert await _rule_rows(database, world.other_clinic_enrollment, "inactivity") == []


class TestNewModule:
    async def _path(self, db, enrollment, completed_at):
        rows = [
            ModuleProgress(
                enrollment_id=enrollment.id,
                program="depression",
                module_key=key,
                position=i,
                last_page=0,
            )
            for i, key in enumerate(
                ["01-understanding-low-mood", "02-activity-and-mood", "03-values-and-planning"],
                start=1,
            )
        ]
        rows[0].started_at = completed_at - timedelta(hours=1)
        rows[0].completed_at = completed_at
        db.add_all(rows)
        await db.commit()
        return rows

    async def test_pacing_date_unlock_fires_after_the_delay_and_not_before(
        self, db, database, settings, clock
    ):
        world = await build_world(db, clock.now())
        completed = clock.now() + DAY  # Tuesday 10:00 UTC
        rows = await self._path(db, world.enrollment, completed)
        await adherence.record(
            db,
            enrollment_id=world.enrollment.id,
            kind=adherence.EventKind.MODULE_COMPLETED,
            at=completed,
        )
        await db.commit()
        # depression: 5 days between modules, counted in UTC days -> opens Sunday 00:00 UTC.
        opens = datetime(2026, 3, 8, 0, 0, tzinfo=UTC)
        await plan(database, settings, opens + timedelta(minutes=60) - SECOND)
        assert await _rule_rows(database, world.enrollment, "new_module") == []
        await plan(database, settings, opens + timedelta(minutes=60))
        found = await _rule_rows(database, world.enrollment, "new_module")
        assert {r.period for r in found} == {str(rows[1].id)}
        # 01:00 UTC is 03:00 in Helsinki, inside the default quiet hours: moved to 08:00 local.
        assert {r.due_at for r in found} == {datetime(2026, 3, 8, 6, 0, tzinfo=UTC)}

    async def test_no_nudge_when_the_patient_was_in_since_it_opened(
        self, db, database, settings, clock
    ):
        world = await build_world(db, clock.now())
        completed = clock.now() + DAY
        await self._path(db, world.enrollment, completed)
        opens = datetime(2026, 3, 8, 0, 0, tzinfo=UTC)
        await adherence.record(
            db,
            enrollment_id=world.enrollment.id,
            kind=adherence.EventKind.LOGIN,
            at=opens + timedelta(minutes=5),
        )
        await db.commit()
        await plan(database, settings, opens + timedelta(hours=2))
        assert await _rule_rows(database, world.enrollment, "new_module") == []

    async def test_therapist_gate_means_only_an_explicit_unlock_fires(
        self, db, database, settings, clock
    ):
        world = await build_world(db, clock.now())
        completed = clock.now() + DAY
        rows = await self._path(db, world.enrollment, completed)
        db.add(PacingOverride(enrollment_id=world.enrollment.id, therapist_gate=True))
        await db.commit()
        await plan(database, settings, datetime(2026, 3, 9, 12, 0, tzinfo=UTC))
        assert await _rule_rows(database, world.enrollment, "new_module") == []
        unlocked = datetime(2026, 3, 9, 12, 30, tzinfo=UTC)
        row = await db.get(ModuleProgress, rows[1].id)
        row.unlocked_at = unlocked
        await db.commit()
        await plan(database, settings, unlocked + timedelta(minutes=59))
        assert await _rule_rows(database, world.enrollment, "new_module") == []
        await plan(database, settings, unlocked + timedelta(minutes=60))
        assert {r.period for r in await _rule_rows(database, world.enrollment, "new_module")} == {
            str(rows[1].id)
        }

    async def test_started_or_hidden_modules_do_not_fire(self, db, database, settings, clock):
        world = await build_world(db, clock.now())
        rows = await self._path(db, world.enrollment, clock.now() + DAY)
        row = await db.get(ModuleProgress, rows[1].id)
        row.started_at = datetime(2026, 3, 8, 0, 30, tzinfo=UTC)
        await db.commit()
        await plan(database, settings, datetime(2026, 3, 8, 2, 0, tzinfo=UTC))
        assert await _rule_rows(database, world.enrollment, "new_module") == []


class TestQuestionnaireDue:
    async def test_fires_a_day_into_each_week_without_an_answer(
        self, db, database, settings, clock
    ):
        world = await build_world(db, clock.now())
        start = clock.now()
        await plan(database, settings, start + DAY - SECOND)
        assert await _rule_rows(database, world.enrollment, "questionnaire_due") == []
        await plan(database, settings, start + DAY)
        assert {
            r.period for r in await _rule_rows(database, world.enrollment, "questionnaire_due")
        } == {"0"}
        # The questionnaires domain agrees that something is due.
        enrollment = await db.get(Enrollment, world.enrollment.id)
        due = await questionnaires.due_questionnaires(
            db, enrollment, library(settings), start + DAY
        )
        assert due

        db.add(
            QuestionnaireResponse(
                enrollment_id=world.enrollment.id,
                instrument="phq9",
                occasion="baseline",
                week=0,
                answers={},
                total=5,
                band="mild",
                completed_at=start + 2 * DAY,
            )
        )
        await db.commit()
        await plan(database, settings, start + 8 * DAY - SECOND)
        assert {
            r.period for r in await _rule_rows(database, world.enrollment, "questionnaire_due")
        } == {"0"}
        await plan(database, settings, start + 8 * DAY)
        assert {
            r.period for r in await _rule_rows(database, world.enrollment, "questionnaire_due")
        } == {"0", "1"}

    async def test_an_answer_this_week_means_no_reminder(self, db, database, settings, clock):
        world = await build_world(db, clock.now())
        start = clock.now()
        for week, at in (
            (0, start + timedelta(hours=2)),
            (1, start + 7 * DAY + timedelta(hours=1)),
        ):
            db.add(
                QuestionnaireResponse(
                    enrollment_id=world.enrollment.id,
                    instrument="phq9",
                    occasion="baseline" if week == 0 else "weekly",
                    week=week,
                    answers={},
                    total=5,
                    band="mild",
                    completed_at=at,
                )
            )
        await db.commit()
        await plan(database, settings, start + 9 * DAY)
        assert await _rule_rows(database, world.enrollment, "questionnaire_due") == []


class TestProgramTime:
    async def test_weekly_time_in_the_patients_zone_across_the_dst_change(
        self, db, database, settings, clock
    ):
        world = await build_world(db, clock.now())
        # Sundays 18:00 in Helsinki. 22 March is still EET (UTC+2), 29 March is EEST (UTC+3).
        await set_preferences(db, world.enrollment, program=(6, time(18, 0)))
        await adherence.record(
            db,
            enrollment_id=world.enrollment.id,
            kind=adherence.EventKind.LOGIN,
            at=datetime(2026, 3, 21, 9, 0, tzinfo=UTC),
        )
        await db.commit()
        winter = datetime(2026, 3, 22, 16, 0, tzinfo=UTC)
        await plan(database, settings, winter - SECOND)
        assert await _rule_rows(database, world.enrollment, "program_time") == []
        await plan(database, settings, winter)
        rows = await _rule_rows(database, world.enrollment, "program_time")
        assert {(r.period, r.due_at) for r in rows} == {("2026-03-22", winter)}

        summer = datetime(2026, 3, 29, 15, 0, tzinfo=UTC)
        await plan(database, settings, summer - SECOND)
        assert len(await _rule_rows(database, world.enrollment, "program_time")) == len(rows)
        await plan(database, settings, summer)
        periods = {
            (r.period, r.due_at)
            for r in await _rule_rows(database, world.enrollment, "program_time")
        }
        assert periods == {("2026-03-22", winter), ("2026-03-29", summer)}

    async def test_stale_occurrences_are_not_dug_up(self, db, database, settings, clock):
        world = await build_world(db, clock.now())
        await set_preferences(db, world.enrollment, program=(0, time(8, 0)))  # Monday 08:00
        # START is Monday 11:00 local: three hours late is still fine...
        await plan(database, settings, clock.now())
        assert len(await _rule_rows(database, world.enrollment, "program_time")) == 2
        # ...but a run on Tuesday evening does not send Monday's.
        world2 = await build_world(db, clock.now())
        await set_preferences(db, world2.enrollment, program=(0, time(8, 0)))
        await plan(database, settings, clock.now() + timedelta(hours=30))
        assert await _rule_rows(database, world2.enrollment, "program_time") == []


class TestRespectsThePatient:
    async def test_quiet_hours_crossing_midnight_push_to_their_end(
        self, db, database, settings, clock
    ):
        world = await build_world(db, clock.now())
        await set_preferences(db, world.enrollment, quiet=(time(22, 0), time(7, 0)))
        last = datetime(2026, 3, 2, 21, 0, tzinfo=UTC)  # 23:00 in Helsinki
        await adherence.record(
            db, enrollment_id=world.enrollment.id, kind=adherence.EventKind.LOGIN, at=last
        )
        await db.commit()
        await plan(database, settings, last + 3 * DAY)  # Thursday 23:00 local
        rows = await _rule_rows(database, world.enrollment, "inactivity")
        # Friday 07:00 in Helsinki (UTC+2) is 05:00 UTC.
        assert {r.due_at for r in rows} == {datetime(2026, 3, 6, 5, 0, tzinfo=UTC)}

    async def test_quiet_hours_end_on_the_night_summer_time_starts(
        self, db, database, settings, clock
    ):
        world = await build_world(db, clock.now())
        await set_preferences(db, world.enrollment, quiet=(time(22, 0), time(7, 0)))
        last = datetime(2026, 3, 25, 21, 0, tzinfo=UTC)  # Wednesday 23:00 EET
        await adherence.record(
            db, enrollment_id=world.enrollment.id, kind=adherence.EventKind.LOGIN, at=last
        )
        await db.commit()
        await plan(database, settings, last + 3 * DAY)  # Saturday 23:00 EET
        rows = await _rule_rows(database, world.enrollment, "inactivity")
        # Sunday 29 March 07:00 is already summer time (UTC+3): 04:00 UTC, not 05:00.
        assert {r.due_at for r in rows} == {datetime(2026, 3, 29, 4, 0, tzinfo=UTC)}

    async def test_allowed_weekdays(self, db, database, settings, clock):
        world = await build_world(db, clock.now())
        await set_preferences(db, world.enrollment, weekdays=[0, 1, 2, 3, 4])  # Mon-Fri
        start = clock.now()
        await plan(database, settings, start + 5 * DAY + timedelta(hours=2))  # Saturday 13:00 local
        rows = await _rule_rows(database, world.enrollment, "inactivity")
        assert {r.due_at for r in rows} == {start + 7 * DAY + timedelta(hours=2)}  # Monday 13:00

    async def test_pause_means_nothing_is_planned(self, db, database, settings, clock):
        world = await build_world(db, clock.now())
        await set_preferences(db, world.enrollment, paused_until=clock.now() + 10 * DAY)
        await plan(database, settings, clock.now() + 3 * DAY)
        await plan(database, settings, clock.now() + 7 * DAY)
        patient_rows = [
            r for r in await reminders(database, world.enrollment) if r.audience == "patient"
        ]
        assert patient_rows == []
        await plan(database, settings, clock.now() + 10 * DAY)
        assert {
            r.period[-2:] for r in await _rule_rows(database, world.enrollment, "inactivity")
        } == {":2"}

    async def test_paused_closed_and_invited_enrollments_get_nothing(
        self, db, database, settings, clock
    ):
        world = await build_world(db, clock.now())
        then = clock.now()
        statuses = {}
        for status in (EnrollmentStatus.PAUSED, EnrollmentStatus.CLOSED, EnrollmentStatus.INVITED):
            _, _, enrollment = await create_enrollment(
                db, world.clinic, world.therapist, then, status=status
            )
            statuses[status] = enrollment
        await db.commit()
        await plan(database, settings, then + 14 * DAY)
        for enrollment in statuses.values():
            assert await reminders(database, enrollment) == []
        assert await reminders(database, world.enrollment)

    async def test_sms_only_when_chosen_with_a_phone_and_a_gateway(
        self, db, database, settings, clock
    ):
        world = await build_world(db, clock.now())
        world.patient.phone = "+358 40 123 4567"
        db.add(world.patient)
        await set_preferences(db, world.enrollment, email=False, sms=True)
        await plan(database, settings, clock.now() + 3 * DAY)
        assert {r.channel for r in await _rule_rows(database, world.enrollment, "inactivity")} == {
            "in_app"
        }
        with_gateway = settings.model_copy(
            update={"reminder_webhook_url": "http://gateway.invalid/sms"}
        )
        await plan(database, with_gateway, clock.now() + 7 * DAY)
        step2 = [
            r
            for r in await _rule_rows(database, world.enrollment, "inactivity")
            if r.period.endswith(":2")
        ]
        assert {r.channel for r in step2} == {"in_app", "sms"}


class TestIdempotentAndBounded:
    async def test_planning_twice_adds_nothing(self, db, database, settings, clock):
        world = await build_world(db, clock.now())
        await set_preferences(db, world.enrollment, program=(0, time(11, 0)))
        moment = clock.now() + 14 * DAY
        first = await plan(database, settings, moment)
        assert first > 0
        keys = [r.dedupe_key for r in await reminders(database)]
        assert await plan(database, settings, moment) == 0
        assert await plan(database, settings, moment + timedelta(minutes=5)) == 0
        assert [r.dedupe_key for r in await reminders(database)] == keys
        assert len(keys) == len(set(keys))

    async def test_statement_count_does_not_grow_with_enrollments(
        self, db, database, settings, clock, engine
    ):
        world = await build_world(db, clock.now())
        now = clock.now()
        local_now = time(11, 0)  # Monday 11:00 in Helsinki
        counts = []
        made = 0
        for target in (5, 50):
            for i in range(target - made):
                _, _, enrollment = await create_enrollment(
                    db, world.clinic, world.therapist, now - 4 * DAY, name=f"Plan Many{target}-{i}"
                )
                await set_preferences(db, enrollment, program=(0, local_now))
            made = target
            await db.commit()
            with count_statements(engine) as log:
                added = await plan(database, settings, now)
            assert added >= target  # every new enrollment got reminders
            counts.append(log.count)
        assert counts[0] == counts[1], counts
        assert counts[0] <= 14, counts


class TestInboxBoundary:
    """The inbox fills three SELECTs in ``app.reminders.rules``; here a stand-in source
    (submitted exercises) shows the planner turns their rows into reminders on time."""

    async def _source(self, db, enrollment, at):
        db.add(
            ExerciseResponse(
                enrollment_id=enrollment.id,
                program="depression",
                module_key="01-understanding-low-mood",
                exercise_id="my-circle",
                exercise_type="free_text",
                status="submitted",
                data_encrypted="x",
                version=1,
                created_at=at,
                updated_at=at,
                submitted_at=at,
            )
        )
        await db.commit()
        return select(
            ExerciseResponse.enrollment_id.label("enrollment_id"),
            ExerciseResponse.id.label("item_id"),
            ExerciseResponse.submitted_at.label("at"),
        ).where(ExerciseResponse.status == "submitted")

    async def test_item_rules_read_the_inbox(self):
        assert rules.unread_staff_messages() is not None
        assert rules.unanswered_patient_messages() is not None
        assert rules.submissions_awaiting_feedback() is not None

    async def test_item_rules_fire_after_their_thresholds(
        self, db, database, settings, clock, monkeypatch
    ):
        world = await build_world(db, clock.now())
        at = clock.now() + timedelta(hours=1)
        source = await self._source(db, world.enrollment, at)
        monkeypatch.setattr(rules, "unread_staff_messages", lambda: source)
        monkeypatch.setattr(rules, "unanswered_patient_messages", lambda: source)
        monkeypatch.setattr(rules, "submissions_awaiting_feedback", lambda: source)

        async def fired():
            return {r.rule for r in await reminders(database, world.enrollment)} & {
                "unread_message",
                "response_due",
                "feedback_overdue",
            }

        await plan(database, settings, at + timedelta(hours=24) - SECOND)
        assert await fired() == set()
        await plan(database, settings, at + timedelta(hours=24))
        assert await fired() == {"unread_message"}
        await plan(database, settings, at + timedelta(hours=40) - SECOND)
        assert await fired() == {"unread_message"}
        await plan(database, settings, at + timedelta(hours=40))  # 48 h promise - 8 h warning
        assert await fired() == {"unread_message", "response_due"}
        await plan(database, settings, at + 3 * DAY)
        assert await fired() == {"unread_message", "response_due", "feedback_overdue"}
        staff = [
            r
            for r in await reminders(database, world.enrollment)
            if r.rule in ("response_due", "feedback_overdue")
        ]
        assert {(r.audience, r.recipient_user_id) for r in staff} == {("staff", world.therapist.id)}
