"""A patient working through modules: the path, reading, exercises, completion and tailoring.

Routes and pages share these functions. They take an ``AsyncSession`` and plain values,
flush but never commit, and each public ``read_*``/write function adds exactly one audit row.
The lower-level loaders (:func:`load_path`, :func:`work_for`) do not audit, so pages that
show several things at once can record one row for the whole page.

Exercise answers are PHI: stored encrypted, decrypted only for the patient and, once
submitted, for their therapist. Clinic admins see that work exists, never what it says.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.orm.attributes import set_committed_value

from app.accounts.models import Role, User
from app.adherence import service as adherence
from app.adherence.service import EventKind
from app.audit import service as audit
from app.audit.service import Actor
from app.clinics.models import Enrollment, EnrollmentStatus
from app.clinics.schemas import PersonRef
from app.common.crypto import FieldCipher
from app.common.errors import Conflict, Invalid, NotFound, PermissionDenied
from app.common.failpoints import failpoint
from app.content.loader import ContentLibrary
from app.content.schemas import ExerciseSpec, Module, Program
from app.programs import pacing
from app.programs.catalogue import PROGRAMS, program_title
from app.programs.exercises import (
    ExerciseValidationError,
    FieldError,
    FormField,
    field_schema,
    validate_draft,
    validate_submission,
)
from app.programs.models import ExerciseResponse, ModuleProgress, PacingOverride, TailoringChange
from app.programs.schemas import (
    AddModule,
    CompletionRead,
    ExerciseRead,
    ExerciseWorkRead,
    FormFieldRead,
    Hide,
    InstrumentPlan,
    ModuleDetailRead,
    ModuleOutline,
    ModulePathRead,
    ModuleStatusRead,
    OpenEarly,
    PacingRead,
    PageRead,
    PageSegmentRead,
    PathPacingRead,
    ProgramDetail,
    ProgramSummary,
    RemoveModule,
    ResponseRead,
    SetPacing,
    TailoringAction,
    TailoringChangeRead,
    Unhide,
)

ENDED_STATUSES = frozenset(
    {EnrollmentStatus.COMPLETED, EnrollmentStatus.DROPPED, EnrollmentStatus.CLOSED}
)
MAX_STORED_CHARS = 200_000
"""A raw draft kept despite validation errors is still capped, so nobody can fill the disk."""
SAVED_EVENT_EVERY = timedelta(minutes=1)
"""Autosave runs every few seconds; the adherence log wants one exercise_saved a minute."""


# --- errors that carry more than a message -----------------------------------------------------


class StaleDraft(Conflict):
    """The client saved on top of a version that is no longer the latest."""

    code = "stale_draft"

    def __init__(self, current: ResponseRead | None, yours: Any) -> None:
        super().__init__(
            "This answer was changed somewhere else (another tab or device) since you opened it. "
            "Nothing was overwritten: choose which version to keep."
        )
        self.current = current
        self.yours = yours


class HomeworkMissing(Conflict):
    """Completion needs every homework exercise of the module submitted."""

    code = "homework_missing"

    def __init__(self, missing: list[ExerciseSpec]) -> None:
        titles = ", ".join(f"“{spec.title}”" for spec in missing)
        super().__init__(f"Please submit this module's homework first: {titles}.")
        self.missing = missing


# --- catalogue ----------------------------------------------------------------------------------


def _outline(program: Program) -> list[ModuleOutline]:
    return [
        ModuleOutline(
            key=module.key,
            number=index,
            title=module.title,
            minutes=module.minutes,
            summary=module.summary,
            exercises=len(module.exercises),
            homework=len(module.homework),
        )
        for index, module in enumerate(program.modules.values(), start=1)
    ]


def program_summaries(library: ContentLibrary) -> list[ProgramSummary]:
    """All nine programs; those whose content is not installed show just their title."""
    result = []
    for slug, fallback in PROGRAMS.items():
        program = library.programs.get(slug)
        if program is None:
            result.append(ProgramSummary(slug=slug, title=fallback))
            continue
        result.append(
            ProgramSummary(
                slug=slug,
                title=program.title,
                summary=program.summary.strip(),
                weeks=program.weeks,
                module_count=len(program.modules),
                total_minutes=sum(m.minutes for m in program.modules.values()),
            )
        )
    return result


def program_detail(library: ContentLibrary, slug: str) -> ProgramDetail:
    if slug not in PROGRAMS:
        raise NotFound(f"There is no program called '{slug}'.")
    program = library.programs.get(slug)
    if program is None:
        return ProgramDetail(slug=slug, title=PROGRAMS[slug])
    return ProgramDetail(
        slug=slug,
        title=program.title,
        summary=program.summary.strip(),
        weeks=program.weeks,
        module_count=len(program.modules),
        total_minutes=sum(m.minutes for m in program.modules.values()),
        pacing=PacingRead(**program.pacing.model_dump()),
        instruments=InstrumentPlan(**program.instruments.model_dump()),
        modules=_outline(program),
    )


def title_of(library: ContentLibrary, slug: str) -> str:
    program = library.programs.get(slug)
    return program.title if program is not None else program_title(slug)


# --- module refs ----------------------------------------------------------------------------------


def module_ref(enrollment_program: str, program: str, key: str) -> str:
    """A module's name in URLs: its key in its own program, ``program:key`` when added."""
    return key if program == enrollment_program else f"{program}:{key}"


def split_ref(enrollment_program: str, ref: str) -> tuple[str, str]:
    program, sep, key = ref.partition(":")
    return (program, key) if sep else (enrollment_program, ref)


# --- the path ---------------------------------------------------------------------------------------


@dataclass
class PathItem:
    """One module on a patient's path with its content and computed status."""

    row: ModuleProgress
    module: Module
    ref: str
    added: bool
    verdict: pacing.Verdict

    @property
    def program(self) -> str:
        return self.row.program

    @property
    def key(self) -> str:
        return self.row.module_key

    @property
    def hidden(self) -> bool:
        return self.row.hidden_at is not None


@dataclass
class PatientPath:
    enrollment: Enrollment
    program: Program | None
    pacing: pacing.EffectivePacing
    items: list[PathItem] = field(default_factory=list)

    @property
    def visible(self) -> list[PathItem]:
        return [item for item in self.items if not item.hidden]

    def find(self, ref: str) -> PathItem | None:
        program, key = split_ref(self.enrollment.program, ref)
        for item in self.items:
            if item.program == program and item.key == key:
                return item
        return None

    def reevaluate(self, now: datetime) -> None:
        """Recompute every verdict after a change made in this request."""
        verdicts = pacing.evaluate(
            [_state(item.row) for item in self.items],
            self.pacing,
            activated_at=self.enrollment.activated_at,
            now=now,
        )
        for item, verdict in zip(self.items, verdicts, strict=True):
            item.verdict = verdict

    @property
    def completed(self) -> int:
        return sum(1 for i in self.visible if i.verdict.status is pacing.Status.COMPLETED)

    def next_item(self) -> PathItem | None:
        index = pacing.next_up([item.verdict for item in self.items])
        return self.items[index] if index is not None else None

    def waiting_item(self) -> PathItem | None:
        index = pacing.waiting([item.verdict for item in self.items])
        return self.items[index] if index is not None else None

    def after(self, item: PathItem) -> PathItem | None:
        """The next visible module after ``item``."""
        visible = self.visible
        for index, candidate in enumerate(visible):
            if candidate is item and index + 1 < len(visible):
                return visible[index + 1]
        return None


def _state(row: ModuleProgress) -> pacing.ModuleState:
    return pacing.ModuleState(
        hidden=row.hidden_at is not None,
        opened_by_therapist=row.unlocked_at is not None,
        started_at=row.started_at,
        completed_at=row.completed_at,
    )


async def _rows(db: AsyncSession, enrollment_id: int) -> list[ModuleProgress]:
    rows = await db.scalars(
        select(ModuleProgress)
        .where(ModuleProgress.enrollment_id == enrollment_id)
        .order_by(ModuleProgress.position, ModuleProgress.id)
    )
    return list(rows)


async def _ensure_rows(
    db: AsyncSession, enrollment: Enrollment, program: Program
) -> list[ModuleProgress]:
    """The path's rows, created in one insert the first time (and topped up if content grew)."""
    rows = await _rows(db, enrollment.id)
    present = {(row.program, row.module_key) for row in rows}
    missing = [key for key in program.module_keys if (program.slug, key) not in present]
    if not missing:
        return rows
    start = max((row.position for row in rows), default=0)
    values = [
        {
            "enrollment_id": enrollment.id,
            "program": program.slug,
            "module_key": key,
            "position": start + offset,
            "last_page": 0,
        }
        for offset, key in enumerate(missing, start=1)
    ]
    try:
        async with db.begin_nested():
            await db.execute(insert(ModuleProgress).values(values))
    except IntegrityError:
        pass  # another request created them a moment ago; read theirs
    return await _rows(db, enrollment.id)


async def load_path(
    db: AsyncSession, enrollment: Enrollment, library: ContentLibrary, *, now: datetime
) -> PatientPath:
    """The patient's modules in order with their status; two queries once rows exist."""
    program = library.programs.get(enrollment.program)
    override = await db.get(PacingOverride, enrollment.id)
    if program is None:
        effective = pacing.EffectivePacing("sequential", False, 0)
        return PatientPath(enrollment, None, effective)
    effective = pacing.effective_pacing(
        program.pacing,
        therapist_gate=override.therapist_gate if override else None,
        min_days_between_modules=override.min_days_between_modules if override else None,
    )
    rows = await _ensure_rows(db, enrollment, program)
    path = PatientPath(enrollment, program, effective)
    placeholder = pacing.Verdict(pacing.Status.LOCKED, None)
    for row in rows:
        source = library.programs.get(row.program)
        module = source.modules.get(row.module_key) if source is not None else None
        if module is None:
            continue  # content withdrawn since the row was made; nothing to show
        path.items.append(
            PathItem(
                row=row,
                module=module,
                ref=module_ref(enrollment.program, row.program, row.module_key),
                added=row.program != enrollment.program,
                verdict=placeholder,
            )
        )
    path.reevaluate(now)
    return path


def status_read(
    item: PathItem, library: ContentLibrary, *, role: Role = Role.PATIENT
) -> ModuleStatusRead:
    """One module's status; the lock reason is worded for the patient or for staff."""
    verdict = item.verdict
    return ModuleStatusRead(
        ref=item.ref,
        program=item.program,
        key=item.key,
        number=verdict.number,
        position=item.row.position,
        title=item.module.title,
        minutes=item.module.minutes,
        summary=item.module.summary,
        status=verdict.status.value,
        locked_reason=pacing.describe_lock(verdict, for_staff=role is not Role.PATIENT),
        lock=verdict.reason.value if verdict.reason else None,
        opens_on=verdict.opens_on,
        hidden=item.hidden,
        added=item.added,
        added_from_title=title_of(library, item.program) if item.added else None,
        opened_early=item.row.unlocked_at is not None,
        started_at=item.row.started_at,
        completed_at=item.row.completed_at,
        last_page=item.row.last_page,
        page_count=len(item.module.pages),
    )


def path_read(path: PatientPath, library: ContentLibrary, *, role: Role) -> ModulePathRead:
    """Patients never see hidden modules; staff see them marked as hidden."""
    items = path.visible if role is Role.PATIENT else path.items
    upcoming = path.next_item()
    effective = path.pacing
    return ModulePathRead(
        enrollment_id=path.enrollment.id,
        program=path.enrollment.program,
        program_title=title_of(library, path.enrollment.program),
        pacing=PathPacingRead(
            unlock=effective.unlock,
            therapist_gate=effective.therapist_gate,
            min_days_between_modules=effective.min_days_between_modules,
            therapist_gate_overridden=effective.gate_overridden,
            min_days_overridden=effective.days_overridden,
        ),
        completed=path.completed,
        total=len(path.visible),
        next=upcoming.ref if upcoming else None,
        modules=[status_read(item, library, role=role) for item in items],
    )


async def _audit(
    db: AsyncSession,
    actor: Actor,
    enrollment: Enrollment,
    *,
    action: str,
    resource_type: str,
    resource_id: Any,
    outcome: str = "ok",
) -> None:
    await audit.record(
        db,
        actor,
        action=action,
        resource_type=resource_type,
        resource_id=resource_id,
        patient_id=enrollment.patient_id,
        clinic_id=enrollment.clinic_id,
        outcome=outcome,
    )


async def read_path(
    db: AsyncSession,
    actor: Actor,
    role: Role,
    enrollment: Enrollment,
    library: ContentLibrary,
    *,
    now: datetime,
) -> ModulePathRead:
    path = await load_path(db, enrollment, library, now=now)
    await _audit(
        db, actor, enrollment, action="read", resource_type="module_path", resource_id=enrollment.id
    )
    return path_read(path, library, role=role)


def _find(path: PatientPath, ref: str, role: Role) -> PathItem:
    item = path.find(ref)
    if item is None or (item.hidden and role is Role.PATIENT):
        raise NotFound("This module is not on the path.", code="module_not_found")
    return item


def _ensure_open(item: PathItem) -> None:
    if not item.verdict.is_open:
        reason = pacing.describe_lock(item.verdict) or "This module is not open yet"
        raise PermissionDenied(f"{reason}.", code="module_locked")


def _ensure_writable(enrollment: Enrollment) -> None:
    if enrollment.status in ENDED_STATUSES:
        raise Conflict(
            "This program has ended, so changes can no longer be saved. "
            "Everything you wrote is kept.",
            code="enrollment_ended",
        )


# --- exercise responses ---------------------------------------------------------------------------


def _decrypt(row: ExerciseResponse, cipher: FieldCipher) -> dict[str, Any]:
    data = json.loads(cipher.decrypt(row.data_encrypted))
    return data if isinstance(data, dict) else {}


def response_read(row: ExerciseResponse, cipher: FieldCipher, *, content: bool) -> ResponseRead:
    """With ``content`` False only the status is given: that work exists, not what it says."""
    return ResponseRead(
        status=row.status,
        version=row.version,
        data=_decrypt(row, cipher) if content else None,
        derived=row.derived if content else None,
        updated_at=row.updated_at,
        submitted_at=row.submitted_at,
    )


def may_read_answer(role: Role, row: ExerciseResponse) -> bool:
    """Patients read all their own work; therapists what was submitted; admins none of it."""
    if role is Role.PATIENT:
        return True
    return role is Role.THERAPIST and row.status == "submitted"


async def _responses(
    db: AsyncSession, enrollment_id: int, program: str, key: str
) -> dict[str, ExerciseResponse]:
    rows = await db.scalars(
        select(ExerciseResponse).where(
            ExerciseResponse.enrollment_id == enrollment_id,
            ExerciseResponse.program == program,
            ExerciseResponse.module_key == key,
        )
    )
    return {row.exercise_id: row for row in rows}


async def _response_row(
    db: AsyncSession, enrollment_id: int, program: str, key: str, exercise_id: str
) -> ExerciseResponse | None:
    return await db.scalar(
        select(ExerciseResponse)
        .where(
            ExerciseResponse.enrollment_id == enrollment_id,
            ExerciseResponse.program == program,
            ExerciseResponse.module_key == key,
            ExerciseResponse.exercise_id == exercise_id,
        )
        .execution_options(populate_existing=True)
    )


def form_fields_read(fields: Sequence[FormField]) -> list[FormFieldRead]:
    return [FormFieldRead.model_validate(dataclasses.asdict(f)) for f in fields]


def exercise_pages(module: Module) -> dict[str, int]:
    """The page each placed exercise sits on; unplaced ones follow the last page."""
    return {eid: page.number for page in module.pages for eid in page.exercise_ids}


def _exercise_reads(
    module: Module,
    responses: dict[str, ExerciseResponse],
    cipher: FieldCipher,
    role: Role,
) -> list[ExerciseRead]:
    placed = exercise_pages(module)
    reads = []
    for spec in module.exercises:
        row = responses.get(spec.id)
        reads.append(
            ExerciseRead(
                id=spec.id,
                type=spec.type,
                title=spec.title,
                instructions=spec.instructions,
                homework=spec.homework,
                questions=spec.questions,
                page=placed.get(spec.id),
                fields=form_fields_read(field_schema(spec.type, spec)),
                response=(
                    response_read(row, cipher, content=may_read_answer(role, row))
                    if row is not None
                    else None
                ),
            )
        )
    return reads


@dataclass
class ModuleView:
    """Everything the reader page needs, already loaded."""

    path: PatientPath
    item: PathItem
    detail: ModuleDetailRead
    responses: dict[str, ResponseRead]


async def open_module(
    db: AsyncSession,
    actor: Actor,
    role: Role,
    enrollment: Enrollment,
    ref: str,
    library: ContentLibrary,
    cipher: FieldCipher,
    *,
    page: int | None,
    now: datetime,
    track: bool = True,
) -> ModuleView:
    """Read one module. For the patient this also keeps the reading position and the log.

    The first opening starts the module (``started_at``) and logs ``module_opened``;
    opening it again without a page logs ``module_opened``; a page number saves the
    reading position and logs ``page_viewed``. Staff read without changing anything.
    ``track=False`` shows the module again after a save in the same request, which has
    already been logged and audited.
    """
    path = await load_path(db, enrollment, library, now=now)
    item = _find(path, ref, role)
    if role is Role.PATIENT:
        _ensure_open(item)
        if page is not None and not 1 <= page <= len(item.module.pages):
            raise Invalid(
                f"This module has pages 1 to {len(item.module.pages)}.",
                field="page",
                code="no_such_page",
            )
        if track:
            await _record_reading(db, enrollment, item, page=page, now=now)
            path.reevaluate(now)
    responses = await _responses(db, enrollment.id, item.program, item.key)
    if track:
        await _audit(
            db, actor, enrollment, action="read", resource_type="module", resource_id=item.ref
        )
    exercises = _exercise_reads(item.module, responses, cipher, role)
    detail = ModuleDetailRead(
        **status_read(item, library, role=role).model_dump(),
        pages=[
            PageRead(
                number=p.number,
                title=p.title,
                segments=[PageSegmentRead(**s.model_dump()) for s in p.segments],
            )
            for p in item.module.pages
        ],
        exercises=exercises,
    )
    return ModuleView(
        path=path,
        item=item,
        detail=detail,
        responses={e.id: e.response for e in exercises if e.response is not None},
    )


async def _record_reading(
    db: AsyncSession, enrollment: Enrollment, item: PathItem, *, page: int | None, now: datetime
) -> None:
    row = item.row
    detail = {"module": item.ref}
    if row.started_at is None or page is None:
        if row.started_at is None:
            row.started_at = now
        await adherence.record(
            db, enrollment_id=enrollment.id, kind=EventKind.MODULE_OPENED, at=now, detail=detail
        )
    if page is not None:
        row.last_page = page
        await adherence.record(
            db,
            enrollment_id=enrollment.id,
            kind=EventKind.PAGE_VIEWED,
            at=now,
            detail={**detail, "page": page},
        )
    await db.flush()


async def save_position(
    db: AsyncSession,
    actor: Actor,
    enrollment: Enrollment,
    ref: str,
    library: ContentLibrary,
    *,
    page: int,
    now: datetime,
) -> ModuleStatusRead:
    """Keep where the patient is reading, so the module opens there next time."""
    path = await load_path(db, enrollment, library, now=now)
    item = _find(path, ref, Role.PATIENT)
    _ensure_open(item)
    if page > len(item.module.pages):
        raise Invalid(
            f"This module has pages 1 to {len(item.module.pages)}.",
            field="page",
            code="no_such_page",
        )
    await _record_reading(db, enrollment, item, page=page, now=now)
    path.reevaluate(now)
    await _audit(
        db, actor, enrollment, action="update", resource_type="module", resource_id=item.ref
    )
    return status_read(item, library)


# --- drafts and submissions --------------------------------------------------------------------

_FRIENDLY: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^Input should be a valid integer"), "Please enter a whole number."),
    (re.compile(r"^Input should be a finite number"), "Please enter a number."),
    (re.compile(r"^Input should be a valid number"), "Please enter a number."),
    (re.compile(r"^Input should be less than or equal to (\S+)"), "Please enter {0} or less."),
    (re.compile(r"^Input should be greater than or equal to (\S+)"), "Please enter {0} or more."),
    (re.compile(r"^Input should be a valid time"), "Please enter a time, for example 22:30."),
    (re.compile(r"^Input should be a valid date"), "Please enter a date, for example 2026-03-14."),
    (
        re.compile(r"^String should have at most (\d+) characters?"),
        "Please shorten this to {0} characters or fewer.",
    ),
    (re.compile(r"^List should have at most (\d+) items?"), "There can be at most {0} rows here."),
    (re.compile(r"^Input should be a valid boolean"), "Please tick the box or leave it empty."),
    (re.compile(r"^Input should be '"), "Please choose one of the options."),
    (re.compile(r"^Extra inputs are not permitted"), "This field is not part of the exercise."),
    (
        re.compile(r"^Input should be a valid (string|list|dictionary)"),
        "This answer has the wrong shape.",
    ),
]


def friendly(errors: Sequence[FieldError]) -> list[FieldError]:
    """Validation messages in plain words a patient can act on; one entry per field."""
    seen: set[str] = set()
    result: list[FieldError] = []
    for error in errors:
        if error["field"] in seen:
            continue
        seen.add(error["field"])
        message = error["message"]
        for pattern, template in _FRIENDLY:
            match = pattern.match(message)
            if match:
                number = match.group(1) if match.groups() else ""
                if number.endswith(".0"):
                    number = number[:-2]
                message = template.format(number)
                break
        result.append({"field": error["field"], "message": message})
    return result


@dataclass
class SaveOutcome:
    """What was stored, and any field problems the patient still has to fix."""

    response: ResponseRead | None
    errors: list[FieldError]


def _encode(data: dict[str, Any]) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False, default=str)


async def _store(
    db: AsyncSession,
    existing: ExerciseResponse | None,
    *,
    enrollment: Enrollment,
    item: PathItem,
    spec: ExerciseSpec,
    data: dict[str, Any],
    status: str,
    derived: dict[str, Any] | None,
    seen_version: int,
    submitted_at: datetime | None,
    cipher: FieldCipher,
    now: datetime,
) -> ExerciseResponse:
    """Write an answer only on top of the version the client saw; otherwise StaleDraft.

    The UPDATE carries ``WHERE version = seen`` so two saves racing from the same version
    cannot both win; the loser gets the 409 with both versions.
    """
    plain = _encode(data)
    if len(plain) > MAX_STORED_CHARS:
        raise Invalid("This answer is too long to save.", field="data", code="too_long")
    values: dict[str, Any] = {
        "exercise_type": spec.type,
        "status": status,
        "data_encrypted": cipher.encrypt(plain),
        "derived": derived,
        "updated_at": now,
        "submitted_at": submitted_at,
    }
    if existing is None:
        if seen_version != 0:
            raise StaleDraft(None, data)
        row = ExerciseResponse(
            enrollment_id=enrollment.id,
            program=item.program,
            module_key=item.key,
            exercise_id=spec.id,
            version=1,
            created_at=now,
            **values,
        )
        try:
            async with db.begin_nested():
                db.add(row)
                await db.flush()
        except IntegrityError:
            current = await _response_row(db, enrollment.id, item.program, item.key, spec.id)
            raise StaleDraft(
                response_read(current, cipher, content=True) if current else None, data
            ) from None
        return row
    if existing.version != seen_version:
        raise StaleDraft(response_read(existing, cipher, content=True), data)
    result = await db.execute(
        update(ExerciseResponse)
        .where(ExerciseResponse.id == existing.id, ExerciseResponse.version == seen_version)
        .values(version=seen_version + 1, **values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        current = await _response_row(db, enrollment.id, item.program, item.key, spec.id)
        raise StaleDraft(response_read(current, cipher, content=True) if current else None, data)
    for name, value in {"version": seen_version + 1, **values}.items():
        set_committed_value(existing, name, value)
    return existing


async def _store_draft(
    db: AsyncSession,
    existing: ExerciseResponse | None,
    enrollment: Enrollment,
    item: PathItem,
    spec: ExerciseSpec,
    data: dict[str, Any],
    *,
    version: int,
    cipher: FieldCipher,
    now: datetime,
) -> ExerciseResponse:
    """Keep what was typed as a draft; a previous submission time stays on record."""
    return await _store(
        db,
        existing,
        enrollment=enrollment,
        item=item,
        spec=spec,
        data=data,
        status="draft",
        derived=None,
        seen_version=version,
        submitted_at=existing.submitted_at if existing else None,
        cipher=cipher,
        now=now,
    )


async def _writable_exercise(
    db: AsyncSession,
    enrollment: Enrollment,
    ref: str,
    exercise_id: str,
    library: ContentLibrary,
    now: datetime,
) -> tuple[PathItem, ExerciseSpec]:
    path = await load_path(db, enrollment, library, now=now)
    item = _find(path, ref, Role.PATIENT)
    try:
        spec = item.module.exercise(exercise_id)
    except KeyError:
        raise NotFound("This module has no such exercise.", code="exercise_not_found") from None
    _ensure_open(item)
    _ensure_writable(enrollment)
    return item, spec


async def _log_saved(
    db: AsyncSession, enrollment: Enrollment, item: PathItem, spec: ExerciseSpec, now: datetime
) -> None:
    """At most one exercise_saved per exercise a minute, however often autosave runs."""
    since = now - SAVED_EVENT_EVERY
    recent = await adherence.recent_events(db, enrollment.id, limit=50)
    for event in recent:
        if event.at <= since:
            break
        detail = event.detail or {}
        if (
            event.kind == EventKind.EXERCISE_SAVED
            and detail.get("module") == item.ref
            and detail.get("exercise") == spec.id
        ):
            return
    await adherence.record(
        db,
        enrollment_id=enrollment.id,
        kind=EventKind.EXERCISE_SAVED,
        at=now,
        detail={"module": item.ref, "exercise": spec.id, "type": spec.type},
    )


def _clean_draft(
    spec: ExerciseSpec, data: dict[str, Any]
) -> tuple[dict[str, Any], list[FieldError]]:
    """The normalised draft, or the data as typed plus what is wrong with it."""
    try:
        return validate_draft(spec.type, data, spec), []
    except ExerciseValidationError as exc:
        return data, friendly(exc.errors)


async def save_draft(
    db: AsyncSession,
    actor: Actor,
    enrollment: Enrollment,
    ref: str,
    exercise_id: str,
    library: ContentLibrary,
    cipher: FieldCipher,
    *,
    data: dict[str, Any],
    version: int,
    now: datetime,
) -> SaveOutcome:
    """Store a draft. Values of the wrong type are stored as typed and reported, never dropped.

    Saving over a submitted answer reopens it as a draft (the patient is revising it);
    their therapist then sees it as being revised until it is submitted again.
    """
    item, spec = await _writable_exercise(db, enrollment, ref, exercise_id, library, now)
    clean, errors = _clean_draft(spec, data)
    existing = await _response_row(db, enrollment.id, item.program, item.key, spec.id)
    resource = f"{item.ref}/{spec.id}"
    try:
        row = await _store_draft(
            db, existing, enrollment, item, spec, clean, version=version, cipher=cipher, now=now
        )
    except StaleDraft:
        await _audit(
            db,
            actor,
            enrollment,
            action="save_draft",
            resource_type="exercise_response",
            resource_id=resource,
            outcome="conflict",
        )
        raise
    await _log_saved(db, enrollment, item, spec, now)
    await _audit(
        db,
        actor,
        enrollment,
        action="save_draft",
        resource_type="exercise_response",
        resource_id=resource,
        outcome="invalid" if errors else "ok",
    )
    return SaveOutcome(response_read(row, cipher, content=True), errors)


async def submit_exercise(
    db: AsyncSession,
    actor: Actor,
    enrollment: Enrollment,
    ref: str,
    exercise_id: str,
    library: ContentLibrary,
    cipher: FieldCipher,
    *,
    data: dict[str, Any] | None,
    version: int,
    grams_per_standard_drink: float,
    now: datetime,
) -> SaveOutcome:
    """Fully validate, derive values and mark submitted; on errors keep what was sent as a draft.

    Without ``data`` the saved draft is submitted. A stale version is refused (and audited).
    """
    try:
        return await _submit(
            db,
            actor,
            enrollment,
            ref,
            exercise_id,
            library,
            cipher,
            data=data,
            version=version,
            grams_per_standard_drink=grams_per_standard_drink,
            now=now,
        )
    except StaleDraft:
        await _audit(
            db,
            actor,
            enrollment,
            action="submit",
            resource_type="exercise_response",
            resource_id=f"{ref}/{exercise_id}",
            outcome="conflict",
        )
        raise


async def _submit(
    db: AsyncSession,
    actor: Actor,
    enrollment: Enrollment,
    ref: str,
    exercise_id: str,
    library: ContentLibrary,
    cipher: FieldCipher,
    *,
    data: dict[str, Any] | None,
    version: int,
    grams_per_standard_drink: float,
    now: datetime,
) -> SaveOutcome:
    item, spec = await _writable_exercise(db, enrollment, ref, exercise_id, library, now)
    existing = await _response_row(db, enrollment.id, item.program, item.key, spec.id)
    resource = f"{item.ref}/{spec.id}"
    sent = data is not None
    if data is None:
        if existing is None:
            await _audit(
                db,
                actor,
                enrollment,
                action="submit",
                resource_type="exercise_response",
                resource_id=resource,
                outcome="invalid",
            )
            return SaveOutcome(None, [{"field": "", "message": "There is nothing to submit yet."}])
        if existing.version != version:
            raise StaleDraft(response_read(existing, cipher, content=True), None)
        data = _decrypt(existing, cipher)
    try:
        result = validate_submission(
            spec.type, data, spec, grams_per_standard_drink=grams_per_standard_drink
        )
    except ExerciseValidationError as exc:
        errors = friendly(exc.errors)
        row = existing
        if sent:
            clean, _ = _clean_draft(spec, data)
            row = await _store_draft(
                db, existing, enrollment, item, spec, clean, version=version, cipher=cipher, now=now
            )
        await _audit(
            db,
            actor,
            enrollment,
            action="submit",
            resource_type="exercise_response",
            resource_id=resource,
            outcome="invalid",
        )
        return SaveOutcome(response_read(row, cipher, content=True) if row else None, errors)
    row = await _store(
        db,
        existing,
        enrollment=enrollment,
        item=item,
        spec=spec,
        data=result.data,
        status="submitted",
        derived=result.derived,
        seen_version=version,
        submitted_at=now,
        cipher=cipher,
        now=now,
    )
    await failpoint("exercise.after_store")
    await adherence.record(
        db,
        enrollment_id=enrollment.id,
        kind=EventKind.EXERCISE_SUBMITTED,
        at=now,
        detail={"module": item.ref, "exercise": spec.id, "type": spec.type},
    )
    await failpoint("exercise.after_event")
    await _audit(
        db,
        actor,
        enrollment,
        action="submit",
        resource_type="exercise_response",
        resource_id=resource,
    )
    await failpoint("exercise.after_audit")
    return SaveOutcome(response_read(row, cipher, content=True), [])


# --- completing a module ----------------------------------------------------------------------------


async def complete_module(
    db: AsyncSession,
    actor: Actor,
    enrollment: Enrollment,
    ref: str,
    library: ContentLibrary,
    *,
    now: datetime,
) -> CompletionRead:
    """Complete a module once its homework is submitted; pacing then opens what comes next.

    Completing twice is harmless: the second call changes nothing and logs nothing.
    """
    path = await load_path(db, enrollment, library, now=now)
    item = _find(path, ref, Role.PATIENT)
    _ensure_open(item)
    _ensure_writable(enrollment)
    if item.row.completed_at is None:
        responses = await _responses(db, enrollment.id, item.program, item.key)
        missing = [
            spec
            for spec in item.module.homework
            if spec.id not in responses or responses[spec.id].status != "submitted"
        ]
        if missing:
            await _audit(
                db,
                actor,
                enrollment,
                action="complete",
                resource_type="module",
                resource_id=item.ref,
                outcome="refused",
            )
            raise HomeworkMissing(missing)
        item.row.completed_at = now
        if item.row.started_at is None:
            item.row.started_at = now
        await db.flush()
        await adherence.record(
            db,
            enrollment_id=enrollment.id,
            kind=EventKind.MODULE_COMPLETED,
            at=now,
            detail={"module": item.ref},
        )
        path.reevaluate(now)
    await _audit(
        db, actor, enrollment, action="complete", resource_type="module", resource_id=item.ref
    )
    following = path.after(item)
    return CompletionRead(
        module=status_read(item, library),
        next=status_read(following, library) if following else None,
        completed=path.completed,
        total=len(path.visible),
    )


# --- a list of an enrollment's work ------------------------------------------------------------------


async def work_for(
    db: AsyncSession,
    role: Role,
    enrollment: Enrollment,
    library: ContentLibrary,
    cipher: FieldCipher,
) -> list[ExerciseWorkRead]:
    """Every answer the caller may know of, newest first, in one query.

    Therapists get submitted answers only (drafts are the patient's own working space);
    admins get the same list with the answers left out.
    """
    stmt = select(ExerciseResponse).where(ExerciseResponse.enrollment_id == enrollment.id)
    if role is not Role.PATIENT:
        stmt = stmt.where(ExerciseResponse.status == "submitted")
    rows = await db.scalars(
        stmt.order_by(
            func.coalesce(ExerciseResponse.submitted_at, ExerciseResponse.updated_at).desc(),
            ExerciseResponse.id.desc(),
        )
    )
    work = []
    for row in rows:
        source = library.programs.get(row.program)
        module = source.modules.get(row.module_key) if source else None
        try:
            exercise_title = module.exercise(row.exercise_id).title if module else row.exercise_id
        except KeyError:
            exercise_title = row.exercise_id
        work.append(
            ExerciseWorkRead(
                module_ref=module_ref(enrollment.program, row.program, row.module_key),
                program=row.program,
                module_key=row.module_key,
                module_title=module.title if module else row.module_key,
                exercise_id=row.exercise_id,
                exercise_title=exercise_title,
                type=row.exercise_type,
                response=response_read(row, cipher, content=may_read_answer(role, row)),
            )
        )
    return work


async def read_work(
    db: AsyncSession,
    actor: Actor,
    role: Role,
    enrollment: Enrollment,
    library: ContentLibrary,
    cipher: FieldCipher,
) -> list[ExerciseWorkRead]:
    work = await work_for(db, role, enrollment, library, cipher)
    await _audit(
        db,
        actor,
        enrollment,
        action="list",
        resource_type="exercise_response",
        resource_id=enrollment.id,
    )
    return work


# --- tailoring ---------------------------------------------------------------------------------------------


def _english(message: str, /, **variables: object) -> str:
    return message % variables if variables else message


def describe_change(kind: str, detail: dict[str, Any], _: Callable[..., str] = _english) -> str:
    """One line for the tailoring history. The JSON API says it in English; pages pass the
    request's ``gettext`` so the therapist reads it in their own language."""
    title = detail.get("title", detail.get("module", "a module"))
    if kind == "open_early":
        if detail.get("gate"):
            return _("Opened “%(title)s”", title=title)
        return _("Opened “%(title)s” early", title=title)
    if kind == "hide":
        return _("Hid “%(title)s”", title=title)
    if kind == "unhide":
        return _("Showed “%(title)s” again", title=title)
    if kind == "add_module":
        source = detail.get("program_title", detail.get("program"))
        return _("Added “%(title)s” from %(program)s", title=title, program=source)
    if kind == "remove_module":
        return _("Removed “%(title)s”", title=title)
    if kind == "pacing":
        after = detail.get("after", {})
        gate = after.get("therapist_gate")
        days = after.get("min_days_between_modules")
        default = _("program default")
        gate_text = {None: default, True: _("on"), False: _("off")}[gate]
        days_text = default if days is None else str(days)
        return _(
            "Changed pacing: therapist opens each module: %(gate)s; days between modules: %(days)s",
            gate=gate_text,
            days=days_text,
        )
    return kind


def _module_detail(item: PathItem) -> dict[str, Any]:
    return {
        "module": item.ref,
        "program": item.program,
        "key": item.key,
        "title": item.module.title,
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _from_iso(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


async def _submitted_count(db: AsyncSession, enrollment_id: int, program: str, key: str) -> int:
    return int(
        await db.scalar(
            select(func.count())
            .select_from(ExerciseResponse)
            .where(
                ExerciseResponse.enrollment_id == enrollment_id,
                ExerciseResponse.program == program,
                ExerciseResponse.module_key == key,
                ExerciseResponse.status == "submitted",
            )
        )
        or 0
    )


async def _remove_added(db: AsyncSession, enrollment: Enrollment, item: PathItem) -> dict[str, Any]:
    if not item.added:
        raise Conflict(
            "Only modules added from another program can be removed; hide a program module instead.",
            code="not_added",
        )
    if await _submitted_count(db, enrollment.id, item.program, item.key):
        raise Conflict(
            "The patient has submitted work in this module, so it stays. You can hide it instead.",
            code="has_work",
        )
    snapshot = {
        **_module_detail(item),
        "position": item.row.position,
        "hidden_at": _iso(item.row.hidden_at),
        "unlocked_at": _iso(item.row.unlocked_at),
        "started_at": _iso(item.row.started_at),
        "completed_at": _iso(item.row.completed_at),
        "last_page": item.row.last_page,
    }
    await db.delete(item.row)
    await db.flush()
    return snapshot


async def _insert_at(
    db: AsyncSession,
    enrollment: Enrollment,
    *,
    program: str,
    key: str,
    position: int,
    added_by_id: int | None,
    restore: dict[str, Any] | None = None,
) -> None:
    """Make room at ``position`` (one UPDATE) and put the module there."""
    await db.execute(
        update(ModuleProgress)
        .where(ModuleProgress.enrollment_id == enrollment.id, ModuleProgress.position >= position)
        .values(position=ModuleProgress.position + 1)
        .execution_options(synchronize_session=False)
    )
    restore = restore or {}
    db.add(
        ModuleProgress(
            enrollment_id=enrollment.id,
            program=program,
            module_key=key,
            position=position,
            added_by_id=added_by_id,
            hidden_at=_from_iso(restore.get("hidden_at")),
            unlocked_at=_from_iso(restore.get("unlocked_at")),
            started_at=_from_iso(restore.get("started_at")),
            completed_at=_from_iso(restore.get("completed_at")),
            last_page=int(restore.get("last_page") or 0),
        )
    )
    await db.flush()


def _resolve_addition(
    library: ContentLibrary, path: PatientPath, body: AddModule
) -> tuple[str, str, Module, int]:
    program_slug, key = body.program, body.module
    if program_slug is None:
        program_slug, sep, key = body.module.partition("/")
        if not sep:
            raise Invalid(
                "Name the program the module comes from, e.g. insomnia/03-your-sleep-window.",
                field="program",
            )
    source = library.programs.get(program_slug)
    if source is None:
        raise Invalid(f"There is no program called '{program_slug}'.", field="program")
    module = source.modules.get(key)
    if module is None:
        raise Invalid(f"{source.title} has no module '{key}'.", field="module")
    if any(item.program == program_slug and item.key == key for item in path.items):
        raise Conflict("This module is already on the patient's path.", code="already_on_path")
    last = max((item.row.position for item in path.items), default=0)
    after = (body.after or "").strip()
    if not after:
        position = last + 1
    elif after == "start":
        position = min((item.row.position for item in path.items), default=1)
    else:
        anchor = path.find(after)
        if anchor is None:
            raise Invalid("Choose a module on the path to place it after.", field="after")
        position = anchor.row.position + 1
    return program_slug, key, module, position


async def _set_override(
    db: AsyncSession,
    enrollment: Enrollment,
    actor: Actor,
    values: dict[str, Any],
    now: datetime,
) -> None:
    override = await db.get(PacingOverride, enrollment.id)
    if override is None:
        override = PacingOverride(enrollment_id=enrollment.id)
        db.add(override)
    override.therapist_gate = values.get("therapist_gate")
    override.min_days_between_modules = values.get("min_days_between_modules")
    override.updated_at = now
    override.updated_by_id = actor.user_id
    await db.flush()


async def _apply(
    db: AsyncSession,
    actor: Actor,
    enrollment: Enrollment,
    path: PatientPath,
    action: TailoringAction,
    library: ContentLibrary,
    now: datetime,
) -> tuple[str, dict[str, Any]]:
    """Make one tailoring change; return its kind and the detail needed to undo it."""
    if isinstance(action, SetPacing):
        override = await db.get(PacingOverride, enrollment.id)
        before = {
            "therapist_gate": override.therapist_gate if override else None,
            "min_days_between_modules": override.min_days_between_modules if override else None,
        }
        after = {
            "therapist_gate": action.therapist_gate,
            "min_days_between_modules": action.min_days_between_modules,
        }
        if before == after:
            raise Conflict("That is already the pacing for this patient.", code="no_change")
        await _set_override(db, enrollment, actor, after, now)
        return "pacing", {"before": before, "after": after}
    if isinstance(action, AddModule):
        program_slug, key, module, position = _resolve_addition(library, path, action)
        await _insert_at(
            db,
            enrollment,
            program=program_slug,
            key=key,
            position=position,
            added_by_id=actor.user_id,
        )
        return "add_module", {
            "module": module_ref(enrollment.program, program_slug, key),
            "program": program_slug,
            "program_title": title_of(library, program_slug),
            "key": key,
            "title": module.title,
            "position": position,
        }
    item = _find(path, action.module, Role.THERAPIST)
    row = item.row
    if isinstance(action, OpenEarly):
        if item.hidden:
            raise Conflict("Show this module again before opening it.", code="hidden")
        if item.verdict.is_open:
            raise Conflict("This module is already open for the patient.", code="already_open")
        gate = item.verdict.reason is pacing.LockReason.THERAPIST_GATE
        row.unlocked_at = now
        row.unlocked_by_id = actor.user_id
        await db.flush()
        return "open_early", {**_module_detail(item), "gate": gate}
    if isinstance(action, Hide):
        if item.hidden:
            raise Conflict("This module is already hidden.", code="already_hidden")
        row.hidden_at = now
        await db.flush()
        return "hide", _module_detail(item)
    if isinstance(action, Unhide):
        if not item.hidden:
            raise Conflict("This module is not hidden.", code="not_hidden")
        previous = row.hidden_at
        row.hidden_at = None
        await db.flush()
        return "unhide", {**_module_detail(item), "hidden_at": _iso(previous)}
    assert isinstance(action, RemoveModule)
    return "remove_module", await _remove_added(db, enrollment, item)


async def _change_read(db: AsyncSession, change: TailoringChange) -> TailoringChangeRead:
    user = await db.get(User, change.actor_id) if change.actor_id else None
    return TailoringChangeRead(
        id=change.id,
        kind=change.kind,
        description=describe_change(change.kind, change.detail),
        detail=change.detail,
        actor=PersonRef(id=user.id, full_name=user.full_name) if user else None,
        at=change.at,
        reverted_at=change.reverted_at,
        revertible=change.reverted_at is None,
    )


async def apply_tailoring(
    db: AsyncSession,
    actor: Actor,
    enrollment: Enrollment,
    action: TailoringAction,
    library: ContentLibrary,
    *,
    now: datetime,
) -> TailoringChangeRead:
    """Change this patient's path without copying the program; every change is recorded."""
    _ensure_writable(enrollment)
    path = await load_path(db, enrollment, library, now=now)
    kind, detail = await _apply(db, actor, enrollment, path, action, library, now)
    change = TailoringChange(
        enrollment_id=enrollment.id, actor_id=actor.user_id, kind=kind, detail=detail, at=now
    )
    db.add(change)
    await db.flush()
    await _audit(
        db,
        actor,
        enrollment,
        action=f"tailor_{kind}",
        resource_type="tailoring_change",
        resource_id=change.id,
    )
    return await _change_read(db, change)


async def _undo(
    db: AsyncSession,
    actor: Actor,
    enrollment: Enrollment,
    path: PatientPath,
    change: TailoringChange,
    now: datetime,
) -> None:
    detail = change.detail
    if change.kind == "pacing":
        await _set_override(db, enrollment, actor, detail.get("before", {}), now)
        return
    program, key = str(detail.get("program")), str(detail.get("key"))
    item = next((i for i in path.items if i.program == program and i.key == key), None)
    if change.kind == "remove_module":
        if item is not None:
            raise Conflict("This module is already back on the path.", code="already_on_path")
        await _insert_at(
            db,
            enrollment,
            program=program,
            key=key,
            position=int(detail.get("position") or 1),
            added_by_id=actor.user_id,
            restore=detail,
        )
        return
    if item is None:
        raise Conflict(
            "This module is no longer on the path, so the change cannot be undone.",
            code="not_on_path",
        )
    row = item.row
    if change.kind == "open_early":
        if row.started_at is not None:
            raise Conflict(
                "The patient has already started this module, so it stays open.",
                code="already_started",
            )
        row.unlocked_at = None
        row.unlocked_by_id = None
    elif change.kind == "hide":
        if row.hidden_at is None:
            raise Conflict("This module is already showing again.", code="not_hidden")
        row.hidden_at = None
    elif change.kind == "unhide":
        if row.hidden_at is not None:
            raise Conflict("This module is already hidden.", code="already_hidden")
        row.hidden_at = now
    elif change.kind == "add_module":
        await _remove_added(db, enrollment, item)
        return
    await db.flush()


async def revert_tailoring(
    db: AsyncSession,
    actor: Actor,
    enrollment: Enrollment,
    change_id: int,
    library: ContentLibrary,
    *,
    now: datetime,
) -> TailoringChangeRead:
    """Undo one earlier change, if what it changed is still as it left it."""
    _ensure_writable(enrollment)
    change = await db.get(TailoringChange, change_id)
    if change is None or change.enrollment_id != enrollment.id:
        raise NotFound("There is no such tailoring change for this patient.")
    if change.reverted_at is not None:
        raise Conflict("This change has already been undone.", code="already_reverted")
    path = await load_path(db, enrollment, library, now=now)
    await _undo(db, actor, enrollment, path, change, now)
    change.reverted_at = now
    await db.flush()
    await _audit(
        db,
        actor,
        enrollment,
        action="tailor_revert",
        resource_type="tailoring_change",
        resource_id=change.id,
    )
    return await _change_read(db, change)


async def tailoring_history(db: AsyncSession, enrollment_id: int) -> list[TailoringChangeRead]:
    """Every change, newest first, with who made it, in one query."""
    therapist = aliased(User)
    rows = await db.execute(
        select(TailoringChange, therapist.id, therapist.full_name)
        .outerjoin(therapist, therapist.id == TailoringChange.actor_id)
        .where(TailoringChange.enrollment_id == enrollment_id)
        .order_by(TailoringChange.at.desc(), TailoringChange.id.desc())
    )
    return [
        TailoringChangeRead(
            id=change.id,
            kind=change.kind,
            description=describe_change(change.kind, change.detail),
            detail=change.detail,
            actor=PersonRef(id=user_id, full_name=name) if user_id is not None else None,
            at=change.at,
            reverted_at=change.reverted_at,
            revertible=change.reverted_at is None,
        )
        for change, user_id, name in rows
    ]


async def read_tailoring(
    db: AsyncSession, actor: Actor, enrollment: Enrollment
) -> list[TailoringChangeRead]:
    history = await tailoring_history(db, enrollment.id)
    await _audit(
        db,
        actor,
        enrollment,
        action="list",
        resource_type="tailoring_change",
        resource_id=enrollment.id,
    )
    return history


@dataclass(frozen=True)
class AddableModule:
    program: str
    program_title: str
    key: str
    title: str


def addable_modules(library: ContentLibrary, path: PatientPath) -> list[AddableModule]:
    """Modules of other programs that are not on this path yet, program by program."""
    present = {(item.program, item.key) for item in path.items}
    return [
        AddableModule(slug, program.title, key, module.title)
        for slug, program in library.programs.items()
        if slug != path.enrollment.program
        for key, module in program.modules.items()
        if (slug, key) not in present
    ]
