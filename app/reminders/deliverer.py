"""The deliverer: claims due reminder rows under a lease, sends them, and records the outcome.

1. **Release** rows whose lease ran out (a worker died mid-send): back to pending, or
   failed once they have used up their attempts.
2. **Claim** a batch: ``SELECT id … FOR UPDATE SKIP LOCKED`` (PostgreSQL: concurrent
   workers pick different rows instead of queueing; SQLite drops the clause and
   ``BEGIN IMMEDIATE`` makes the claim a single writer), then the conditional
   ``UPDATE … WHERE status = 'pending' AND next_attempt_at <= now … RETURNING id``,
   which is the real guard on both: a row already claimed no longer matches. The claim
   (with a fresh tracking token) commits before anything is sent.
3. **Send** outside any transaction. E-mail and SMS carry the dedupe key, so a retry
   after a crash is recognisable downstream.
4. **Finish** each row with an UPDATE that only matches while this worker still holds the
   claim; in-app notifications, ``reminder_sent`` and dropout alerts are written in that
   same transaction, so they happen exactly once.

Before sending, each row is checked again against the current state: a closed or paused
enrollment, paused reminders or a channel switched off cancel it; quiet hours postpone
it; the cap on nudges per lapse cancels the extra ones.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, select, update
from sqlalchemy.orm import aliased

from app.accounts.models import User
from app.adherence import service as adherence
from app.adherence.models import EnrollmentRollup
from app.clinics.models import Clinic, Enrollment, EnrollmentStatus, Patient
from app.common.crypto import new_token, token_hash
from app.config import Settings
from app.db import Database
from app.questionnaires.models import RiskAlert
from app.reminders import render, rules
from app.reminders.channels import Channels, DeliveryError, Outgoing, Sender
from app.reminders.models import Notification, Reminder, ReminderPreference, ReminderRuleConfig
from app.reminders.planner import send_window
from app.reminders.rules import Rule
from app.reminders.sql import insert_ignoring_duplicates

log = logging.getLogger("tuki.reminders")

LEASE_EXPIRED = "the sender stopped before finishing (lease expired)"


@dataclass
class DeliveryReport:
    released: int = 0
    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    cancelled: int = 0
    postponed: int = 0

    def add(self, other: DeliveryReport) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class _Outcome:
    reminder_id: int
    action: str  # sent | retry | failed | cancelled | postponed
    reason: str | None = None
    at: datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def default_worker_id() -> str:
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Deliverer:
    """One worker's view of the reminder queue. Several may run at once, in any processes."""

    def __init__(
        self,
        database: Database,
        *,
        settings: Settings,
        channels: Channels,
        worker_id: str | None = None,
        batch_size: int | None = None,
    ) -> None:
        self.database = database
        self.settings = settings
        self.channels = channels
        self.worker_id = worker_id or default_worker_id()
        self.batch_size = batch_size or settings.reminder_batch_size
        self.lease = timedelta(seconds=settings.reminder_lease_seconds)
        self.secret = settings.secret_key.get_secret_value()

    # 1. release --------------------------------------------------------------------------

    async def release_expired(self, now: datetime) -> int:
        """Rows whose claim ran out go back to pending (or to failed if out of attempts)."""
        out_of_attempts = Reminder.attempts >= self.settings.reminder_max_attempts
        stmt = (
            update(Reminder)
            .where(Reminder.status == "sending", Reminder.lease_until <= now)
            .values(
                status=case((out_of_attempts, "failed"), else_="pending"),
                last_error=LEASE_EXPIRED,
                lease_until=None,
                claimed_by=None,
                next_attempt_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        async with self.database.sessionmaker() as db, db.begin():
            result = await db.execute(stmt)
        return int(getattr(result, "rowcount", 0) or 0)

    # 2. claim ----------------------------------------------------------------------------

    async def claim(self, now: datetime) -> dict[int, str]:
        """Claim up to a batch of due rows; returns reminder id -> the raw tracking token.

        Two statements in one short transaction: pick and lock the ids (PostgreSQL skips
        rows another worker holds; SQLite already holds its single write lock from
        ``BEGIN IMMEDIATE``), then the conditional UPDATE, whose RETURNING says which rows
        this worker really won. The pick is a separate statement on purpose: inside an
        ``IN (…)`` subquery PostgreSQL may re-run a ``LIMIT … SKIP LOCKED`` scan when rows
        change under it and claim far more than one batch.
        """
        pick = (
            select(Reminder.id)
            .where(Reminder.status == "pending", Reminder.next_attempt_at <= now)
            .order_by(Reminder.next_attempt_at, Reminder.id)
            .limit(self.batch_size)
            .with_for_update(skip_locked=True)
        )
        async with self.database.sessionmaker() as db, db.begin():
            picked = list((await db.execute(pick)).scalars())
            if not picked:
                return {}
            won = await db.execute(
                update(Reminder)
                .where(
                    Reminder.id.in_(picked),
                    Reminder.status == "pending",
                    Reminder.next_attempt_at <= now,
                )
                .values(
                    status="sending",
                    attempts=Reminder.attempts + 1,
                    lease_until=now + self.lease,
                    claimed_by=self.worker_id,
                )
                .returning(Reminder.id)
                .execution_options(synchronize_session=False)
            )
            tokens = {reminder_id: new_token() for reminder_id in won.scalars()}
            if tokens:
                await db.execute(
                    update(Reminder),
                    [
                        {"id": reminder_id, "token_hash": token_hash(self.secret, token)}
                        for reminder_id, token in tokens.items()
                    ],
                )
        return tokens

    # 3 + 4. decide, send, finish ---------------------------------------------------------

    async def _context(self, ids: list[int]) -> list[Any]:
        pref = aliased(ReminderPreference, name="pref")
        cfg = aliased(ReminderRuleConfig, name="cfg")
        stmt = (
            select(
                Reminder,
                User.email,
                User.language,
                Clinic.language.label("clinic_language"),
                Enrollment.status.label("enrollment_status"),
                Patient.phone,
                Patient.timezone,
                pref.enrollment_id.label("has_preference"),
                pref.email_enabled,
                pref.sms_enabled,
                pref.weekdays,
                pref.quiet_start,
                pref.quiet_end,
                pref.paused_until,
                cfg.max_nudges_per_lapse,
            )
            .join(User, User.id == Reminder.recipient_user_id)
            .outerjoin(Enrollment, Enrollment.id == Reminder.enrollment_id)
            .outerjoin(Patient, Patient.id == Enrollment.patient_id)
            .outerjoin(pref, pref.enrollment_id == Reminder.enrollment_id)
            .outerjoin(cfg, cfg.clinic_id == Reminder.clinic_id)
            .outerjoin(Clinic, Clinic.id == Reminder.clinic_id)
            .where(Reminder.id.in_(ids), Reminder.claimed_by == self.worker_id)
            .order_by(Reminder.id)
        )
        async with self.database.sessionmaker() as db:
            return list((await db.execute(stmt)).all())

    async def _nudges_this_lapse(self, enrollment_ids: set[int]) -> dict[int, set[tuple[str, str]]]:
        """Patient nudges already sent since each enrollment's last activity."""
        found: dict[int, set[tuple[str, str]]] = defaultdict(set)
        if not enrollment_ids:
            return found
        lapse_start = EnrollmentRollup.last_activity_at
        stmt = (
            select(Reminder.enrollment_id, Reminder.rule, Reminder.period)
            .distinct()
            .join(Enrollment, Enrollment.id == Reminder.enrollment_id)
            .outerjoin(EnrollmentRollup, EnrollmentRollup.enrollment_id == Reminder.enrollment_id)
            .where(
                Reminder.enrollment_id.in_(enrollment_ids),
                Reminder.audience == "patient",
                Reminder.status == "sent",
                (lapse_start.is_(None)) | (Reminder.sent_at >= lapse_start),
            )
        )
        async with self.database.sessionmaker() as db:
            for enrollment_id, rule, period in await db.execute(stmt):
                if enrollment_id is not None:
                    found[enrollment_id].add((rule, period))
        return found

    def _decide(
        self, row: Any, now: datetime, nudges: dict[int, set[tuple[str, str]]]
    ) -> _Outcome | None:
        """Cancel or postpone a claimed row whose situation changed; None means send it."""
        reminder: Reminder = row.Reminder
        if reminder.enrollment_id is not None and row.enrollment_status != EnrollmentStatus.ACTIVE:
            return _Outcome(reminder.id, "cancelled", "the enrollment is not active")
        if reminder.audience != "patient":
            return None
        if row.paused_until is not None and row.paused_until > now:
            return _Outcome(reminder.id, "cancelled", "reminders are paused")
        if reminder.channel == "email" and row.has_preference and not row.email_enabled:
            return _Outcome(reminder.id, "cancelled", "e-mail reminders were turned off")
        if reminder.channel == "sms" and not (row.sms_enabled and row.phone):
            return _Outcome(reminder.id, "cancelled", "SMS reminders were turned off")
        window = send_window(
            self.settings,
            has_preference=row.has_preference is not None,
            weekdays=row.weekdays,
            quiet_start=row.quiet_start,
            quiet_end=row.quiet_end,
        )
        placed = rules.place(now, window, rules.zone(row.timezone))
        if placed > now:
            return _Outcome(reminder.id, "postponed", at=placed)
        cap = row.max_nudges_per_lapse or self.settings.reminder_max_nudges_per_lapse
        nudge = (reminder.rule, reminder.period)
        sent: set[tuple[str, str]] = (
            nudges[reminder.enrollment_id] if reminder.enrollment_id is not None else set()
        )
        if nudge not in sent and len(sent) >= cap:
            return _Outcome(reminder.id, "cancelled", "the cap on reminders for this lapse")
        sent.add(nudge)
        return None

    async def _send(self, row: Any, token: str) -> _Outcome:
        reminder: Reminder = row.Reminder
        if reminder.channel == "in_app":
            return _Outcome(reminder.id, "sent")  # written in the finishing transaction
        link = f"{self.settings.base_url.rstrip('/')}/r/{token}"
        # Their own choice, else their clinic's: no browser is there to ask.
        locale = row.language or row.clinic_language
        rendered = render.render(reminder.rule, reminder.audience, link, locale=locale)
        sender: Sender | None
        if reminder.channel == "email":
            sender, to, text = self.channels.email, row.email, rendered.text
        else:
            sender, to, text = self.channels.sms, row.phone, render.sms_text(rendered, link)
        if sender is None or not to:
            return _Outcome(reminder.id, "cancelled", f"no {reminder.channel} channel configured")
        try:
            await sender.send(
                Outgoing(reminder.dedupe_key, reminder.channel, to, rendered.subject, text)
            )
        except DeliveryError as exc:
            return self._failure(reminder, str(exc)[:180])
        except Exception as exc:
            # Never let one bad send stop the sweep; keep only the type (no personal data).
            return self._failure(reminder, f"{reminder.channel}: {type(exc).__name__}")
        return _Outcome(reminder.id, "sent")

    def _failure(self, reminder: Reminder, reason: str) -> _Outcome:
        if reminder.attempts >= self.settings.reminder_max_attempts:
            return _Outcome(reminder.id, "failed", reason)
        backoff = min(
            self.settings.reminder_retry_base_seconds * 2 ** max(0, reminder.attempts - 1),
            self.settings.reminder_retry_max_seconds,
        )
        return _Outcome(reminder.id, "retry", reason, extra={"backoff": backoff})

    async def _finish(
        self, outcomes: list[_Outcome], rows: dict[int, Any], now: datetime
    ) -> DeliveryReport:
        """Record the batch in one transaction; if that fails, row by row, so one bad row
        cannot send the others round again when their lease runs out."""
        # The same order in every worker, so concurrent finishes lock rollups in one order.
        outcomes = sorted(
            outcomes,
            key=lambda o: (rows[o.reminder_id].Reminder.enrollment_id or 0, o.reminder_id),
        )
        try:
            return await self._finish_batch(outcomes, rows, now)
        except Exception as exc:
            log.warning("finishing a delivery batch failed (%s); row by row", type(exc).__name__)
        report = DeliveryReport()
        for outcome in outcomes:
            try:
                report.add(await self._finish_batch([outcome], rows, now))
            except Exception as exc:
                log.error(
                    "finishing reminder %d failed: %s", outcome.reminder_id, type(exc).__name__
                )
        return report

    async def _finish_batch(
        self, outcomes: list[_Outcome], rows: dict[int, Any], now: datetime
    ) -> DeliveryReport:
        report = DeliveryReport()
        mine = [Reminder.status == "sending", Reminder.claimed_by == self.worker_id]
        logged = sorted(
            {
                rows[o.reminder_id].Reminder.enrollment_id
                for o in outcomes
                if o.action == "sent" and rows[o.reminder_id].Reminder.enrollment_id is not None
            }
        )
        async with self.database.sessionmaker() as db, db.begin():
            if logged:
                # Two workers may log the first event of an enrollment at the same moment;
                # make its rollup row exist first, so neither of them fails on inserting it.
                await db.execute(
                    insert_ignoring_duplicates(db, EnrollmentRollup.__table__, key="enrollment_id"),
                    [{"enrollment_id": e, "event_count": 0, "login_count": 0} for e in logged],
                )
            for outcome in outcomes:
                reminder: Reminder = rows[outcome.reminder_id].Reminder
                base = update(Reminder).where(Reminder.id == reminder.id, *mine)
                values: dict[str, Any] = {"lease_until": None, "claimed_by": None}
                if outcome.action == "sent":
                    values.update(status="sent", sent_at=now, last_error=None)
                elif outcome.action == "retry":
                    values.update(
                        status="pending",
                        last_error=outcome.reason,
                        next_attempt_at=now + timedelta(seconds=outcome.extra["backoff"]),
                    )
                elif outcome.action == "failed":
                    values.update(status="failed", last_error=outcome.reason)
                elif outcome.action == "cancelled":
                    values.update(status="cancelled", last_error=outcome.reason)
                else:  # postponed: not an attempt, just not yet
                    values.update(
                        status="pending",
                        due_at=outcome.at,
                        next_attempt_at=outcome.at,
                        attempts=Reminder.attempts - 1,
                    )
                result = await db.execute(
                    base.values(**values).execution_options(synchronize_session=False)
                )
                if not getattr(result, "rowcount", 0):
                    continue  # the lease ran out and another worker owns the row now
                counter = _COUNTER[outcome.action]
                setattr(report, counter, getattr(report, counter) + 1)
                if outcome.action == "sent":
                    await self._record_sent(db, reminder, now)
        return report

    async def _record_sent(self, db: Any, reminder: Reminder, now: datetime) -> None:
        """The in-app notification, the adherence entry and, for dropout, the therapist's alert."""
        if reminder.channel == "in_app":
            db.add(
                Notification(
                    user_id=reminder.recipient_user_id,
                    reminder_id=reminder.id,
                    text=render.line_for(reminder.rule, reminder.audience),
                    link=render.target_path(
                        reminder.rule, reminder.audience, reminder.enrollment_id
                    ),
                    created_at=now,
                )
            )
            await db.flush()
        if reminder.enrollment_id is None:
            return
        if reminder.audience == "patient":
            await adherence.record(
                db,
                enrollment_id=reminder.enrollment_id,
                kind=adherence.EventKind.REMINDER_SENT,
                at=now,
                actor_role="system",
                detail={
                    "reminder_id": reminder.id,
                    "rule": reminder.rule,
                    "channel": reminder.channel,
                },
            )
        elif reminder.rule == Rule.DROPOUT_ALERT and reminder.channel == "in_app":
            await _raise_dropout_alert(db, reminder, reminder.enrollment_id, now)

    async def deliver(self, tokens: dict[int, str], now: datetime) -> DeliveryReport:
        """Decide, send and finish the rows this worker has just claimed."""
        if not tokens:
            return DeliveryReport()
        context = await self._context(list(tokens))
        rows = {row.Reminder.id: row for row in context}
        nudges = await self._nudges_this_lapse(
            {
                row.Reminder.enrollment_id
                for row in context
                if row.Reminder.audience == "patient" and row.Reminder.enrollment_id is not None
            }
        )
        outcomes: list[_Outcome] = []
        for row in context:
            outcome = self._decide(row, now, nudges)
            if outcome is None:
                outcome = await self._send(row, tokens[row.Reminder.id])
            outcomes.append(outcome)
        report = await self._finish(outcomes, rows, now)
        report.claimed = len(tokens)
        return report

    async def run(self, now: datetime, *, max_batches: int = 20) -> DeliveryReport:
        """Release expired leases, then claim and deliver batches until none are due."""
        report = DeliveryReport(released=await self.release_expired(now))
        for _ in range(max_batches):
            tokens = await self.claim(now)
            if not tokens:
                break
            report.add(await self.deliver(tokens, now))
        return report


_COUNTER = {
    "sent": "sent",
    "retry": "retried",
    "failed": "failed",
    "cancelled": "cancelled",
    "postponed": "postponed",
}


async def _raise_dropout_alert(
    db: Any, reminder: Reminder, enrollment_id: int, now: datetime
) -> None:
    """A warning for the therapist instead of more automatic nudges (reason has no health details)."""
    lapse_started = datetime.fromtimestamp(int(reminder.period.split(":")[0]), tz=now.tzinfo)
    days = max(1, (now - lapse_started).days)
    alert = RiskAlert(
        enrollment_id=enrollment_id,
        level="warning",
        source="inactivity",
        source_id=reminder.id,
        reason=f"No activity in Tuki for {days} days; the patient may be dropping out. "
        "A personal check-in may help.",
        created_at=now,
    )
    db.add(alert)
    await db.flush()
    await adherence.record(
        db,
        enrollment_id=enrollment_id,
        kind=adherence.EventKind.ALERT_RAISED,
        at=now,
        actor_role="system",
        detail={"alert_id": alert.id, "level": "warning", "source": "inactivity"},
    )
