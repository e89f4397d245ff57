"""The one way to add to the adherence log; keeps the per-enrollment rollup in step.

``record()`` appends the event and changes the rollup with one atomic upsert whose SET
clause is SQL arithmetic (``count = count + 1``, ``last = CASE WHEN … END``), so two
requests logging at the same moment can never lose each other's update. ``rebuild()``
recomputes the rollup and the answered waits from the log with set-based SQL; the two
must always agree (a property test checks it).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Table,
    and_,
    bindparam,
    case,
    delete,
    func,
    insert,
    literal,
    null,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.util import identity_key

from app.adherence.models import AdherenceEvent, EnrollmentRollup, SupportWait
from app.adherence.sql import json_list_has, lock_for_rebuild, upsert
from app.db import UTCDateTime


class EventKind(enum.StrEnum):
    LOGIN = "login"
    INVITATION_ACCEPTED = "invitation_accepted"
    MODULE_OPENED = "module_opened"
    PAGE_VIEWED = "page_viewed"
    EXERCISE_SAVED = "exercise_saved"
    EXERCISE_SUBMITTED = "exercise_submitted"
    MODULE_COMPLETED = "module_completed"
    QUESTIONNAIRE_COMPLETED = "questionnaire_completed"
    MESSAGE_SENT = "message_sent"
    MESSAGE_READ = "message_read"
    FEEDBACK_READ = "feedback_read"
    REMINDER_SENT = "reminder_sent"
    REMINDER_OPENED = "reminder_opened"
    ALERT_RAISED = "alert_raised"
    STATUS_CHANGED = "status_changed"


# Staff actions are logged but do not count as the patient being active.
PATIENT_ACTIVITY = frozenset(
    {
        EventKind.LOGIN,
        EventKind.INVITATION_ACCEPTED,
        EventKind.MODULE_OPENED,
        EventKind.PAGE_VIEWED,
        EventKind.EXERCISE_SAVED,
        EventKind.EXERCISE_SUBMITTED,
        EventKind.MODULE_COMPLETED,
        EventKind.QUESTIONNAIRE_COMPLETED,
        EventKind.MESSAGE_SENT,
        EventKind.MESSAGE_READ,
        EventKind.FEEDBACK_READ,
        EventKind.REMINDER_OPENED,
    }
)

GESTURES = ("autonomy", "alliance", "emotion_regulation")
"""Support functions a therapist message can be tagged with (``detail["functions"]``)."""

_ROLLUP: Table = EnrollmentRollup.__table__  # type: ignore[assignment]
_EVENT: Table = AdherenceEvent.__table__  # type: ignore[assignment]
_WAIT: Table = SupportWait.__table__  # type: ignore[assignment]

# Counters bumped by one event of a kind, when the actor is as given (None: anyone).
_COUNTERS: dict[EventKind, tuple[str | None, str]] = {
    EventKind.LOGIN: (None, "login_count"),
    EventKind.MODULE_COMPLETED: (None, "modules_completed"),
    EventKind.EXERCISE_SUBMITTED: (None, "exercises_submitted"),
    EventKind.QUESTIONNAIRE_COMPLETED: (None, "questionnaires_completed"),
    EventKind.REMINDER_SENT: (None, "reminders_sent"),
    EventKind.REMINDER_OPENED: (None, "reminders_opened"),
    EventKind.ALERT_RAISED: (None, "alerts_raised"),
}
# Latest-timestamp columns moved by one event of a kind.
_LATEST: dict[EventKind, str] = {
    EventKind.LOGIN: "last_login_at",
    EventKind.MODULE_COMPLETED: "last_module_completed_at",
    EventKind.QUESTIONNAIRE_COMPLETED: "last_questionnaire_at",
}


@dataclass(frozen=True)
class _Effect:
    """What one event does to the rollup; computed in Python, applied by SQL."""

    add: dict[str, int]
    latest: list[str]
    earliest: list[str]
    closes: list[str]  # support waits this event ends ("reply", "feedback")


def _effect(kind: EventKind, actor_role: str | None, detail: Mapping[str, Any] | None) -> _Effect:
    add: dict[str, int] = {"event_count": 1}
    latest: list[str] = []
    earliest: list[str] = []
    closes: list[str] = []
    if kind in PATIENT_ACTIVITY and actor_role == "patient":
        earliest.append("first_activity_at")
        latest.append("last_activity_at")
    if kind in _COUNTERS:
        add[_COUNTERS[kind][1]] = 1
    if kind in _LATEST:
        latest.append(_LATEST[kind])
    if kind is EventKind.EXERCISE_SUBMITTED:
        earliest.append("awaiting_feedback_since")
    if kind is EventKind.MESSAGE_SENT and actor_role == "patient":
        add["messages_from_patient"] = 1
        latest.append("last_patient_message_at")
        earliest.append("awaiting_reply_since")
    if kind is EventKind.MESSAGE_SENT and actor_role == "therapist":
        add["messages_to_patient"] = 1
        latest.append("last_therapist_message_at")
        functions = (detail or {}).get("functions") or []
        for name in GESTURES:
            if name in functions:
                add[f"gestures_{name}"] = 1
        closes.append("reply")
        if (detail or {}).get("anchored"):
            closes.append("feedback")
    return _Effect(add, latest, earliest, closes)


def _later(current: Any, new: Any) -> ColumnElement[Any]:
    return case((or_(current.is_(None), current < new), new), else_=current)


def _earlier(current: Any, new: Any) -> ColumnElement[Any]:
    return case((or_(current.is_(None), current > new), new), else_=current)


async def record(
    db: AsyncSession,
    *,
    enrollment_id: int,
    kind: EventKind,
    at: datetime,
    actor_role: str | None = "patient",
    detail: dict[str, Any] | None = None,
) -> None:
    """Append an event and update the rollup in the same transaction.

    Two statements for most events: the insert and one upsert. A therapist's message
    adds two more (write the answered waits, then clear them), run after the upsert has
    locked the rollup row so two replies cannot both claim the same wait.
    """
    event_id = await db.scalar(
        _INSERT_EVENT,
        {
            "enrollment_id": enrollment_id,
            "kind": kind.value,
            "at": at,
            "actor_role": actor_role,
            "detail": detail,
        },
    )
    effect = _effect(kind, actor_role, detail)
    first: dict[str, Any] = {"enrollment_id": enrollment_id, **effect.add}
    first.update(dict.fromkeys([*effect.latest, *effect.earliest], at))
    await db.execute(_rollup_upsert(db, effect), first)
    if effect.closes:
        await _close_waits(db, enrollment_id, effect.closes, at=at, event_id=int(event_id or 0))
    # An EnrollmentRollup already loaded in this session would now be stale.
    loaded = db.sync_session.identity_map.get(identity_key(EnrollmentRollup, enrollment_id))
    if loaded is not None:
        await db.refresh(loaded)


# Built once: the event INSERT, and one rollup upsert per shape of effect and database.
# Building them on every event cost about as much as sending them.
_INSERT_EVENT = insert(_EVENT).returning(_EVENT.c.id)
_UPSERTS: dict[tuple[str, tuple[str, ...], tuple[str, ...], tuple[str, ...]], Any] = {}


def _rollup_upsert(db: AsyncSession, effect: _Effect) -> Any:
    """The upsert for this effect's columns, with bind parameters named after them."""
    dialect = db.get_bind().dialect.name
    key = (dialect, tuple(effect.add), tuple(effect.latest), tuple(effect.earliest))
    stmt = _UPSERTS.get(key)
    if stmt is None:
        c = _ROLLUP.c
        names = ["enrollment_id", *effect.add, *effect.latest, *effect.earliest]
        values = {name: bindparam(name, type_=c[name].type) for name in names}

        def changes(excluded: Any) -> dict[str, Any]:
            sets: dict[str, Any] = {name: c[name] + excluded[name] for name in effect.add}
            sets.update({name: _later(c[name], excluded[name]) for name in effect.latest})
            sets.update({name: _earlier(c[name], excluded[name]) for name in effect.earliest})
            return sets

        stmt = _UPSERTS[key] = upsert(
            db, _ROLLUP, key="enrollment_id", values=values, update=changes
        )
    return stmt


_WAIT_COLUMN = {"reply": "awaiting_reply_since", "feedback": "awaiting_feedback_since"}


async def _close_waits(
    db: AsyncSession, enrollment_id: int, kinds: list[str], *, at: datetime, event_id: int
) -> None:
    """Turn the rollup's open waits into ``support_wait`` rows, then clear them."""
    c = _ROLLUP.c
    selects = [
        select(
            c.enrollment_id,
            literal(kind).label("kind"),
            c[_WAIT_COLUMN[kind]].label("started_at"),
            literal(at, UTCDateTime()).label("ended_at"),
            literal(event_id).label("event_id"),
        ).where(c.enrollment_id == enrollment_id, c[_WAIT_COLUMN[kind]].is_not(None))
        for kind in kinds
    ]
    source = selects[0] if len(selects) == 1 else selects[0].union_all(*selects[1:])
    await db.execute(
        insert(_WAIT).from_select(
            ["enrollment_id", "kind", "started_at", "ended_at", "event_id"], source
        )
    )
    await db.execute(
        update(_ROLLUP)
        .where(c.enrollment_id == enrollment_id)
        .values({_WAIT_COLUMN[kind]: null() for kind in kinds})
    )


# Reading --------------------------------------------------------------------------------------


async def rollups_for(db: AsyncSession, enrollment_ids: list[int]) -> dict[int, EnrollmentRollup]:
    """Rollups for a page of enrollments in one query."""
    if not enrollment_ids:
        return {}
    rows = await db.scalars(
        select(EnrollmentRollup).where(EnrollmentRollup.enrollment_id.in_(enrollment_ids))
    )
    return {r.enrollment_id: r for r in rows}


async def recent_events(
    db: AsyncSession, enrollment_id: int, *, limit: int = 20
) -> list[AdherenceEvent]:
    """Newest first, through the (enrollment_id, at) index."""
    rows = await db.scalars(
        select(AdherenceEvent)
        .where(AdherenceEvent.enrollment_id == enrollment_id)
        .order_by(AdherenceEvent.at.desc(), AdherenceEvent.id.desc())
        .limit(limit)
    )
    return list(rows)


async def event_count(db: AsyncSession, enrollment_id: int) -> int:
    return int(
        await db.scalar(
            select(func.count())
            .select_from(AdherenceEvent)
            .where(AdherenceEvent.enrollment_id == enrollment_id)
        )
        or 0
    )


# Rebuilding -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RebuildReport:
    rollups: int
    waits: int
    drifted: int  # rollup rows whose values changed (0 when the incremental path was right)


ROLLUP_COLUMNS = tuple(col.name for col in _ROLLUP.c)


def _rollup_select() -> Any:
    """One row per enrollment with events, every rollup column computed by GROUP BY.

    In two steps, because evaluating some thirty CASE aggregates on every event was most
    of the rebuild's time: the log is first counted per (enrollment, kind, actor) with its
    first and last moment (three plain aggregates), and the columns are pivoted from those
    few rows. Only what needs single events (the waits still open, the support functions
    in ``detail``) reads the message and exercise events themselves.
    """
    e = _EVENT.c
    per_kind = (
        select(
            e.enrollment_id,
            e.kind,
            e.actor_role,
            func.count().label("n"),
            func.min(e.at).label("first_at"),
            func.max(e.at).label("last_at"),
        )
        .group_by(e.enrollment_id, e.kind, e.actor_role)
        .subquery("per_kind")
    )
    k = per_kind.c
    activity = and_(
        k.kind.in_([kind.value for kind in PATIENT_ACTIVITY]), k.actor_role == "patient"
    )

    def total(condition: Any) -> Any:
        return func.coalesce(func.sum(case((condition, k.n), else_=0)), 0)

    columns: dict[str, Any] = {
        "enrollment_id": k.enrollment_id,
        "event_count": func.sum(k.n),
        "first_activity_at": func.min(case((activity, k.first_at))),
        "last_activity_at": func.max(case((activity, k.last_at))),
        "messages_from_patient": total(_is_patient_message(k)),
        "messages_to_patient": total(_is_therapist_message(k)),
        "last_patient_message_at": func.max(case((_is_patient_message(k), k.last_at))),
        "last_therapist_message_at": func.max(case((_is_therapist_message(k), k.last_at))),
    }
    for kind, (_, column) in _COUNTERS.items():
        columns[column] = total(k.kind == kind.value)
    for kind, column in _LATEST.items():
        columns[column] = func.max(case((k.kind == kind.value, k.last_at)))
    pivot = (
        select(*[value.label(name) for name, value in columns.items()])
        .group_by(k.enrollment_id)
        .subquery("per_enrollment")
    )
    side = _message_side()
    from_side = {col.key: col for col in side.c if col.key != "enrollment_id"}
    for name in GESTURES:
        from_side[f"gestures_{name}"] = func.coalesce(side.c[f"gestures_{name}"], 0)
    missing = set(ROLLUP_COLUMNS) - set(columns) - set(from_side)
    if missing:
        raise RuntimeError(f"rebuild does not compute {sorted(missing)}")
    return select(
        *[
            (from_side[name] if name in from_side else pivot.c[name]).label(name)
            for name in ROLLUP_COLUMNS
        ]
    ).select_from(pivot.outerjoin(side, side.c.enrollment_id == pivot.c.enrollment_id))


def _message_side() -> Any:
    """Per enrollment, from its message and exercise events only: the waits still open
    (what arrived after the last answer) and the support functions of its messages."""
    e = _EVENT.c
    # Each row carries its enrollment's last therapist message (and last anchored one):
    # waits still open are what arrived after them.
    rows = (
        select(
            e.enrollment_id,
            e.id,
            e.at,
            e.kind,
            e.actor_role,
            e.detail,
            func.max(case((_is_therapist_message(e), e.id)))
            .over(partition_by=e.enrollment_id)
            .label("reply_id"),
            func.max(case((_is_anchored_answer(e), e.id)))
            .over(partition_by=e.enrollment_id)
            .label("feedback_id"),
        )
        .where(e.kind.in_([EventKind.MESSAGE_SENT.value, EventKind.EXERCISE_SUBMITTED.value]))
        .subquery("message_events")
    )
    m = rows.c
    columns: dict[str, Any] = {
        "enrollment_id": m.enrollment_id,
        "awaiting_reply_since": func.min(
            case((and_(_is_patient_message(m), m.id > func.coalesce(m.reply_id, 0)), m.at))
        ),
        "awaiting_feedback_since": func.min(
            case(
                (
                    and_(
                        m.kind == EventKind.EXERCISE_SUBMITTED.value,
                        m.id > func.coalesce(m.feedback_id, 0),
                    ),
                    m.at,
                )
            )
        ),
    }
    for name in GESTURES:
        columns[f"gestures_{name}"] = func.sum(
            case(
                (and_(_is_therapist_message(m), json_list_has(m.detail, "functions", name)), 1),
                else_=0,
            )
        )
    return (
        select(*[value.label(name) for name, value in columns.items()])
        .group_by(m.enrollment_id)
        .subquery("message_side")
    )


def _is_patient_message(cols: Any) -> Any:
    return and_(cols.kind == EventKind.MESSAGE_SENT.value, cols.actor_role == "patient")


def _is_therapist_message(cols: Any) -> Any:
    return and_(cols.kind == EventKind.MESSAGE_SENT.value, cols.actor_role == "therapist")


def _is_anchored_answer(cols: Any) -> Any:
    return and_(_is_therapist_message(cols), cols.detail["anchored"].as_boolean().is_(True))


def _waits_select(kind: str) -> Any:
    """Each answering message with the oldest item it answered, in one window pass.

    Over the relevant events of an enrollment in log order, ``before`` counts the answers
    that came earlier. Waited-for items with ``before = k`` are answered by the answer
    that itself has ``before = k`` (the next one), so grouping and joining on
    (enrollment, k) pairs every answer with the minimum time of what it answered.
    """
    e = _EVENT.c
    if kind == "feedback":
        answers = _is_anchored_answer(e)
        waited_for: Any = e.kind == EventKind.EXERCISE_SUBMITTED.value
    else:
        answers = _is_therapist_message(e)
        waited_for = _is_patient_message(e)
    ordered = (
        select(
            e.id,
            e.enrollment_id,
            e.at,
            answers.label("is_answer"),
            func.coalesce(
                func.sum(case((answers, 1), else_=0)).over(
                    partition_by=e.enrollment_id, order_by=e.id, rows=(None, -1)
                ),
                0,
            ).label("before"),
        )
        .where(or_(answers, waited_for))
        # Read twice below: materialised, the window pass over the log runs once.
        .cte("ordered")
        .prefix_with("MATERIALIZED")
    )
    o = ordered.c
    waited = (
        select(o.enrollment_id, o.before, func.min(o.at).label("started_at"))
        .where(~o.is_answer)
        .group_by(o.enrollment_id, o.before)
        .subquery("waited")
    )
    return select(
        o.enrollment_id,
        literal(kind).label("kind"),
        waited.c.started_at,
        o.at.label("ended_at"),
        o.id.label("event_id"),
    ).select_from(
        ordered.join(
            waited,
            and_(
                waited.c.enrollment_id == o.enrollment_id,
                waited.c.before == o.before,
                o.is_answer,
            ),
        )
    )


async def rebuild(db: AsyncSession) -> RebuildReport:
    """Recompute every rollup row and answered wait from the log, set-based, in place.

    The caller's transaction makes it all-or-nothing; on PostgreSQL the tables are locked
    against concurrent writers until it commits, so no event slips between old and new.
    """
    await lock_for_rebuild(db, ["enrollment_rollup", "support_wait"])
    before = {row[0]: tuple(row) for row in await db.execute(select(*_ROLLUP.c))}
    await db.execute(delete(_WAIT))
    await db.execute(delete(_ROLLUP))
    await db.execute(insert(_ROLLUP).from_select(list(ROLLUP_COLUMNS), _rollup_select()))
    for kind in ("reply", "feedback"):
        await db.execute(
            insert(_WAIT).from_select(
                ["enrollment_id", "kind", "started_at", "ended_at", "event_id"],
                _waits_select(kind),
            )
        )
    after = {row[0]: tuple(row) for row in await db.execute(select(*_ROLLUP.c))}
    waits = int(await db.scalar(select(func.count()).select_from(_WAIT)) or 0)
    drifted = sum(1 for key in before.keys() | after.keys() if before.get(key) != after.get(key))
    # Rows loaded before the rebuild are gone; let later reads load the new ones.
    for obj in list(db.sync_session.identity_map.values()):
        if isinstance(obj, EnrollmentRollup | SupportWait):
            db.expunge(obj)
    return RebuildReport(rollups=len(after), waits=waits, drifted=drifted)


__all__ = [
    "GESTURES",
    "PATIENT_ACTIVITY",
    "EventKind",
    "RebuildReport",
    "event_count",
    "rebuild",
    "recent_events",
    "record",
    "rollups_for",
]
