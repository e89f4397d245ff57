"""The planner: evaluates every rule for all active enrollments and inserts reminder rows.

Each rule is one ``INSERT … SELECT … ON CONFLICT (dedupe_key) DO NOTHING`` over all
enrollments at once, so the number of statements does not grow with the number of
patients and running the planner twice inserts nothing new. Thresholds come from each
clinic's ``reminder_rule_config`` row (outer join) or the defaults in settings, and all
date arithmetic is done on epoch seconds so it reads the same on SQLite and PostgreSQL.

Rows are inserted already placed in the patient's own time (zoneinfo, DST included):
before the rules run, one statement lists the distinct (time zone, weekdays, quiet hours)
combinations of active patients; Python works out for each where "now" lands, and the
few combinations that are quiet or off-day right now are joined into every INSERT as a
small table of later due times. The weekly "program time" is worked out in Python over
rows fetched in one statement and inserted with one executemany statement.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    String,
    and_,
    case,
    cast,
    exists,
    func,
    literal,
    literal_column,
    or_,
    select,
    true,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.sql import Select, Subquery

from app.adherence.models import EnrollmentRollup
from app.clinics.models import Enrollment, EnrollmentStatus, Patient
from app.config import Settings
from app.content.loader import ContentLibrary
from app.db import UTCDateTime
from app.programs.models import ModuleProgress, PacingOverride
from app.questionnaires.models import QuestionnaireResponse
from app.reminders import rules
from app.reminders.models import Reminder, ReminderPreference, ReminderRuleConfig
from app.reminders.rules import Rule, RuleConfig, SendWindow
from app.reminders.sql import epoch_seconds, insert_ignoring_duplicates

log = logging.getLogger("tuki.reminders")

DAY = 86_400
HOUR = 3_600
WEEK = 7 * DAY
MAX_MOVED_WINDOWS = 5_000
INSERT_COLUMNS = [
    "dedupe_key",
    "rule",
    "period",
    "audience",
    "channel",
    "status",
    "clinic_id",
    "enrollment_id",
    "recipient_user_id",
    "due_at",
    "next_attempt_at",
    "attempts",
    "created_at",
]


@dataclass
class PlanReport:
    """How many reminder rows this run added (as far as the driver reports row counts)."""

    planned: int = 0


def _text(value: str) -> ColumnElement[str]:
    """A string constant written into the SQL itself, so unions and concatenations stay typed."""
    return literal_column("'" + value.replace("'", "''") + "'", String)


class _Run:
    """One planning run: the clock reading and the joins every rule shares."""

    def __init__(
        self, db: AsyncSession, *, now: datetime, settings: Settings, library: ContentLibrary
    ) -> None:
        self.db = db
        self.now = now
        self.settings = settings
        self.library = library
        self.defaults = RuleConfig.defaults(settings)
        self.sms_available = bool(settings.reminder_webhook_url)
        self.cfg = aliased(ReminderRuleConfig, name="cfg")
        self.pref = aliased(ReminderPreference, name="pref")
        self.now_epoch = literal(int(now.timestamp()))
        self.placement: Subquery | None = None
        self.added = 0

    def now_value(self) -> ColumnElement[datetime]:
        return literal(self.now, UTCDateTime())

    def setting(self, name: str) -> ColumnElement[Any]:
        """The clinic's value for a rule setting, or the default when it has no row."""
        return func.coalesce(getattr(self.cfg, name), literal(getattr(self.defaults, name)))

    def enabled(self, name: str) -> ColumnElement[bool]:
        return self.setting(name).is_(True)

    # Shared shapes ---------------------------------------------------------------------

    def channels(self, *, audience: str) -> Subquery:
        names = ["in_app", "email"]
        if audience == "patient" and self.sms_available:
            names.append("sms")
        return union_all(*(select(_text(n).label("channel")) for n in names)).subquery("ch")

    def patient_channel_allowed(self, ch: Subquery) -> ColumnElement[bool]:
        pref = self.pref
        return or_(
            ch.c.channel == "in_app",
            and_(
                ch.c.channel == "email",
                func.coalesce(pref.email_enabled, literal(True)).is_(True),
            ),
            and_(ch.c.channel == "sms", pref.sms_enabled.is_(True), Patient.phone.is_not(None)),
        )

    def rows(
        self,
        *,
        rule: Rule,
        audience: str,
        period: ColumnElement[str],
        where: list[ColumnElement[bool]],
        extra_from: Any = None,
    ) -> Select[Any]:
        """The SELECT feeding one rule's INSERT: one row per enrollment x allowed channel."""
        pref = self.pref
        ch = self.channels(audience=audience)
        subject = cast(Enrollment.id, String)
        key = _text(f"{rule.value}:e") + subject + _text(":") + period + _text(":") + ch.c.channel
        recipient = Patient.user_id if audience == "patient" else Enrollment.therapist_id
        now = self.now_value()
        due: ColumnElement[Any] = now
        placement = self.placement if audience == "patient" else None
        if placement is not None:
            due = func.coalesce(placement.c.due_at, now, type_=UTCDateTime())
        stmt = select(
            key,
            _text(rule.value),
            period,
            _text(audience),
            ch.c.channel,
            _text("pending"),
            Enrollment.clinic_id,
            Enrollment.id,
            recipient,
            due,
            due,
            literal(0),
            now,
        ).select_from(Enrollment)
        if extra_from is not None:
            stmt = stmt.join(extra_from, extra_from.c.enrollment_id == Enrollment.id)
        stmt = (
            stmt.join(Patient, Patient.id == Enrollment.patient_id)
            .outerjoin(self.cfg, self.cfg.clinic_id == Enrollment.clinic_id)
            .outerjoin(pref, pref.enrollment_id == Enrollment.id)
            .outerjoin(EnrollmentRollup, EnrollmentRollup.enrollment_id == Enrollment.id)
        )
        if placement is not None:
            stmt = stmt.outerjoin(placement, placement.c.window == self.window_key())
        stmt = stmt.join(ch, true()).where(Enrollment.status == EnrollmentStatus.ACTIVE, *where)
        if audience == "patient":
            stmt = stmt.where(
                or_(pref.paused_until.is_(None), pref.paused_until <= now),
                self.patient_channel_allowed(ch),
            )
            if rule != Rule.INACTIVITY:
                stmt = stmt.where(self.before_last_step())
        return stmt

    # Local time --------------------------------------------------------------------------

    def window_key(self) -> ColumnElement[str]:
        """One string per (zone, own choice or default, weekdays, quiet hours): a hashable join key."""
        pref = self.pref

        def part(value: Any) -> ColumnElement[str]:
            return func.coalesce(cast(value, String), _text(""))

        return (
            part(Patient.timezone)
            + _text("|")
            + case((pref.enrollment_id.is_(None), _text("d")), else_=_text("p"))
            + _text("|")
            + part(pref.weekdays)
            + _text("|")
            + part(pref.quiet_start)
            + _text("|")
            + part(pref.quiet_end)
        )

    async def prepare_placement(self) -> None:
        """Work out, per distinct window of the active patients, where "now" has to move to."""
        pref = self.pref
        windows = await self.db.execute(
            select(
                self.window_key(),
                Patient.timezone,
                pref.enrollment_id.is_not(None),
                cast(pref.weekdays, String),
                pref.quiet_start,
                pref.quiet_end,
            )
            .distinct()
            .select_from(Enrollment)
            .join(Patient, Patient.id == Enrollment.patient_id)
            .outerjoin(pref, pref.enrollment_id == Enrollment.id)
            .where(Enrollment.status == EnrollmentStatus.ACTIVE)
        )
        moved: dict[str, datetime] = {}
        for key, timezone, has_preference, weekdays, quiet_start, quiet_end in windows:
            window = send_window(
                self.settings,
                has_preference=bool(has_preference),
                weekdays=json.loads(weekdays) if weekdays else None,
                quiet_start=quiet_start,
                quiet_end=quiet_end,
            )
            due = rules.place(self.now, window, rules.zone(timezone))
            if due != self.now:
                moved[key] = due
        if not moved:
            return
        if len(moved) > MAX_MOVED_WINDOWS:
            # Bind-parameter limits. The rest go in at "now"; the deliverer postpones them.
            log.warning("%d quiet windows; placing the first %d", len(moved), MAX_MOVED_WINDOWS)
            moved = dict(list(moved.items())[:MAX_MOVED_WINDOWS])
        self.placement = union_all(
            *(
                select(
                    literal(key, String).label("window"),
                    literal(due, UTCDateTime()).label("due_at"),
                )
                for key, due in moved.items()
            )
        ).subquery("placement")

    def before_last_step(self) -> ColumnElement[bool]:
        """Once a lapse reaches the last inactivity step the therapist takes over: no more nudges."""
        return self.now_epoch - self.lapse_start() < self.setting("inactivity_days_3") * DAY

    async def insert(self, stmt: Select[Any]) -> None:
        insert = insert_ignoring_duplicates(self.db, Reminder.__table__, key="dedupe_key")
        result = await self.db.execute(insert.from_select(INSERT_COLUMNS, stmt))
        self.added += max(0, int(getattr(result, "rowcount", 0) or 0))

    # Rules -----------------------------------------------------------------------------

    def lapse_start(self) -> ColumnElement[Any]:
        return epoch_seconds(
            func.coalesce(
                EnrollmentRollup.last_activity_at, Enrollment.activated_at, Enrollment.created_at
            )
        )

    async def inactivity(self) -> None:
        """One statement per step; a step fires only inside its own window of the lapse."""
        lapse = self.lapse_start()
        elapsed = self.now_epoch - lapse
        for step in (1, 2, 3):
            where = [
                self.enabled("inactivity_enabled"),
                elapsed >= self.setting(f"inactivity_days_{step}") * DAY,
            ]
            if step < 3:
                where.append(elapsed < self.setting(f"inactivity_days_{step + 1}") * DAY)
            period = cast(lapse, String) + _text(f":{step}")
            await self.insert(
                self.rows(rule=Rule.INACTIVITY, audience="patient", period=period, where=where)
            )

    async def dropout_alert(self) -> None:
        """At the last inactivity step the therapist is told, once per lapse."""
        lapse = self.lapse_start()
        where = [
            self.enabled("dropout_alert_enabled"),
            self.now_epoch - lapse >= self.setting("inactivity_days_3") * DAY,
        ]
        await self.insert(
            self.rows(
                rule=Rule.DROPOUT_ALERT, audience="staff", period=cast(lapse, String), where=where
            )
        )

    async def new_module(self) -> None:
        """Modules opened by the therapist, or by pacing on a date, while the patient was away."""
        mp = ModuleProgress
        visible = (
            select(
                mp.id.label("module_progress_id"),
                mp.enrollment_id.label("enrollment_id"),
                mp.unlocked_at,
                mp.started_at,
                mp.completed_at,
                func.lag(mp.completed_at)
                .over(partition_by=mp.enrollment_id, order_by=(mp.position, mp.id))
                .label("previous_completed_at"),
            )
            .where(mp.hidden_at.is_(None))
            .subquery("visible")
        )
        programs = self.library.programs
        override = aliased(PacingOverride, name="override")
        min_days_by_program = {
            slug: p.pacing.min_days_between_modules
            for slug, p in programs.items()
            if p.pacing.min_days_between_modules
        }
        program_min_days: ColumnElement[Any] = (
            case(min_days_by_program, value=Enrollment.program, else_=0)
            if min_days_by_program
            else literal(0)
        )
        min_days = func.coalesce(override.min_days_between_modules, program_min_days)
        gated = [slug for slug, p in programs.items() if p.pacing.therapist_gate]
        all_open = [slug for slug, p in programs.items() if p.pacing.unlock == "all"]
        gate_off = or_(
            override.therapist_gate.is_(False),
            and_(override.therapist_gate.is_(None), Enrollment.program.not_in(gated)),
        )
        opened = case(
            (visible.c.unlocked_at.is_not(None), epoch_seconds(visible.c.unlocked_at)),
            (
                and_(
                    gate_off,
                    Enrollment.program.not_in(all_open),
                    min_days > 0,
                    visible.c.previous_completed_at.is_not(None),
                ),
                (epoch_seconds(visible.c.previous_completed_at) // DAY) * DAY + min_days * DAY,
            ),
            else_=None,
        )
        delay = self.setting("new_module_delay_minutes") * 60
        where = [
            self.enabled("new_module_enabled"),
            visible.c.started_at.is_(None),
            visible.c.completed_at.is_(None),
            opened.is_not(None),
            opened <= self.now_epoch - delay,
            opened > self.now_epoch - int(rules.NEW_MODULE_LOOKBACK.total_seconds()),
            or_(
                EnrollmentRollup.last_activity_at.is_(None),
                epoch_seconds(EnrollmentRollup.last_activity_at) < opened,
            ),
        ]
        stmt = self.rows(
            rule=Rule.NEW_MODULE,
            audience="patient",
            period=cast(visible.c.module_progress_id, String),
            where=where,
            extra_from=visible,
        ).outerjoin(override, override.enrollment_id == Enrollment.id)
        await self.insert(stmt)

    async def questionnaire_due(self) -> None:
        """Once per treatment week with no answer yet (or no baseline ever), after a grace period."""
        programs = self.library.programs
        weekly = [slug for slug, p in programs.items() if p.instruments.weekly]
        any_instrument = [slug for slug, p in programs.items() if p.instruments.all_codes]
        activated = epoch_seconds(Enrollment.activated_at)
        week = (self.now_epoch - activated) // WEEK
        week_start = activated + week * WEEK
        qr = QuestionnaireResponse
        answered_this_week = exists().where(
            qr.enrollment_id == Enrollment.id, epoch_seconds(qr.completed_at) >= week_start
        )
        baseline_done = exists().where(qr.enrollment_id == Enrollment.id, qr.occasion == "baseline")
        where = [
            self.enabled("questionnaire_enabled"),
            Enrollment.activated_at.is_not(None),
            activated <= self.now_epoch,
            self.now_epoch >= week_start + self.setting("questionnaire_after_hours") * HOUR,
            or_(
                and_(Enrollment.program.in_(weekly), ~answered_this_week),
                and_(Enrollment.program.in_(any_instrument), ~baseline_done),
            ),
        ]
        await self.insert(
            self.rows(
                rule=Rule.QUESTIONNAIRE_DUE,
                audience="patient",
                period=cast(week, String),
                where=where,
            )
        )

    async def items(
        self,
        source: Select[Any, Any, Any] | None,
        *,
        rule: Rule,
        audience: str,
        enabled: str,
        after_seconds: ColumnElement[Any],
    ) -> None:
        """Rules over rows the inbox provides (see the boundary in ``rules``): one per item."""
        if source is None:
            return
        items = source.subquery("items")
        at = epoch_seconds(items.c.at)
        where = [
            self.enabled(enabled),
            at <= self.now_epoch - after_seconds,
            at > self.now_epoch - after_seconds - int(rules.NEW_MODULE_LOOKBACK.total_seconds()),
        ]
        if audience == "staff":
            where.append(self.enabled("staff_reminders_enabled"))
        await self.insert(
            self.rows(
                rule=rule,
                audience=audience,
                period=cast(items.c.item_id, String),
                where=where,
                extra_from=items,
            )
        )

    async def program_time(self) -> int:
        """The patient's own weekly time, worked out in their zone (so DST is respected)."""
        pref = self.pref
        now = self.now
        result = await self.db.execute(
            select(
                Enrollment.id,
                Enrollment.clinic_id,
                Patient.user_id,
                Patient.timezone,
                Patient.phone,
                pref.program_weekday,
                pref.program_time,
                pref.email_enabled,
                pref.sms_enabled,
                pref.weekdays,
                pref.quiet_start,
                pref.quiet_end,
            )
            .join(Patient, Patient.id == Enrollment.patient_id)
            .join(pref, pref.enrollment_id == Enrollment.id)
            .outerjoin(self.cfg, self.cfg.clinic_id == Enrollment.clinic_id)
            .outerjoin(EnrollmentRollup, EnrollmentRollup.enrollment_id == Enrollment.id)
            .where(
                Enrollment.status == EnrollmentStatus.ACTIVE,
                self.enabled("program_time_enabled"),
                pref.program_weekday.is_not(None),
                pref.program_time.is_not(None),
                or_(pref.paused_until.is_(None), pref.paused_until <= now),
                self.before_last_step(),
            )
        )
        values: list[dict[str, Any]] = []
        for row in result:
            tz = rules.zone(row.timezone)
            occurrence = rules.program_time_occurrence(
                now, row.program_weekday, row.program_time, tz
            )
            if not occurrence <= now < occurrence + rules.PROGRAM_TIME_WINDOW:
                continue
            period = occurrence.astimezone(tz).date().isoformat()
            window = send_window(
                self.settings,
                has_preference=True,
                weekdays=row.weekdays,
                quiet_start=row.quiet_start,
                quiet_end=row.quiet_end,
            )
            due = rules.place(occurrence, window, tz)
            channels = ["in_app"]
            if row.email_enabled:
                channels.append("email")
            if row.sms_enabled and row.phone and self.sms_available:
                channels.append("sms")
            values.extend(
                {
                    "dedupe_key": f"{Rule.PROGRAM_TIME.value}:e{row.id}:{period}:{channel}",
                    "rule": Rule.PROGRAM_TIME.value,
                    "period": period,
                    "audience": "patient",
                    "channel": channel,
                    "status": "pending",
                    "clinic_id": row.clinic_id,
                    "enrollment_id": row.id,
                    "recipient_user_id": row.user_id,
                    "due_at": due,
                    "next_attempt_at": due,
                    "attempts": 0,
                    "created_at": now,
                }
                for channel in channels
            )
        if values:
            insert = insert_ignoring_duplicates(self.db, Reminder.__table__, key="dedupe_key")
            result = await self.db.execute(insert, values)
            self.added += max(0, int(getattr(result, "rowcount", 0) or 0))
        return len(values)


def send_window(
    settings: Settings,
    *,
    has_preference: bool,
    weekdays: list[int] | None,
    quiet_start: Any,
    quiet_end: Any,
) -> SendWindow:
    """The patient's own window, or the clinic-wide default quiet hours if they chose nothing."""
    if not has_preference:
        return SendWindow(
            quiet_start=settings.reminder_quiet_hours_start,
            quiet_end=settings.reminder_quiet_hours_end,
        )
    days = frozenset(d for d in (weekdays or []) if 0 <= d <= 6) or rules.ALL_WEEKDAYS
    return SendWindow(weekdays=days, quiet_start=quiet_start, quiet_end=quiet_end)


async def plan(
    db: AsyncSession, *, now: datetime, settings: Settings, library: ContentLibrary
) -> PlanReport:
    """Evaluate every rule for every active enrollment; the caller commits.

    A bounded number of statements whatever the number of enrollments: one SELECT of
    the distinct local-time windows, one INSERT per SQL rule, and one SELECT and one
    INSERT for program times.
    """
    run = _Run(db, now=now, settings=settings, library=library)
    await run.prepare_placement()
    await run.new_module()
    await run.inactivity()
    await run.dropout_alert()
    await run.questionnaire_due()
    await run.items(
        rules.unread_staff_messages(),
        rule=Rule.UNREAD_MESSAGE,
        audience="patient",
        enabled="unread_message_enabled",
        after_seconds=run.setting("unread_message_hours") * HOUR,
    )
    await run.items(
        rules.unanswered_patient_messages(),
        rule=Rule.RESPONSE_DUE,
        audience="staff",
        enabled="staff_reminders_enabled",
        after_seconds=(
            run.setting("response_promise_hours") - run.setting("response_warning_hours")
        )
        * HOUR,
    )
    await run.items(
        rules.submissions_awaiting_feedback(),
        rule=Rule.FEEDBACK_OVERDUE,
        audience="staff",
        enabled="staff_reminders_enabled",
        after_seconds=run.setting("feedback_overdue_days") * DAY,
    )
    await run.program_time()
    return PlanReport(planned=run.added)
