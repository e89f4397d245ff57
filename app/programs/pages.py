"""HTML pages: the patient's dashboard, module list, reader and exercise forms, and the
therapist's view of one patient's work with the tailoring controls.

Everything works without JavaScript: exercise forms post back here ("Save draft",
"Submit", "Add a row" and "Remove" are plain submit buttons), and ``static/js/autosave.js``
only adds saving as you type through the JSON API.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote

from babel.dates import get_month_names
from fastapi import Path, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import TypeAdapter, ValidationError

from app.accounts.dependencies import PatientUser, TherapistUser, actor_for
from app.accounts.models import Role
from app.accounts.policy import Principal
from app.audit import service as audit
from app.clinics import service as clinics_service
from app.clinics.models import Enrollment
from app.common.errors import AppError, NotFound
from app.common.routing import Router
from app.content.loader import ContentLibrary
from app.content.service import library_of
from app.deps import CipherDep, ClockDep, DbSession, SettingsDep
from app.inbox import service as inbox
from app.programs import service
from app.programs.exercises import MAX_ROWS, FieldError, field_schema
from app.programs.router import TherapistEnrollment
from app.programs.schemas import (
    ExerciseRead,
    ExerciseWorkRead,
    FormFieldRead,
    ModuleStatusRead,
    ResponseRead,
    TailoringAction,
)
from app.templating import reader_zone, render, templates
from app.web.forms import form_data
from app.web.i18n import N_, get_locale, translate
from app.web.i18n import gettext as _

router = Router(include_in_schema=False)

STATUS_TEXT = {
    "completed": N_("Completed"),
    "in_progress": N_("In progress"),
    "available": N_("Ready to start"),
    "locked": N_("Not open yet"),
}

# The reasons app.programs.pacing gives for a locked module, so they can be shown translated.
_LOCK_REASONS = (
    (
        re.compile(r"Opens when module (\d+) is completed"),
        N_("Opens when module %(value)s is completed"),
    ),
    (
        re.compile(r"Opens when you complete module (\d+)"),
        N_("Opens when you complete module %(value)s"),
    ),
    (re.compile(r"Opens on (\d+ \w+)"), N_("Opens on %(value)s")),
)
_FIXED_LOCK_REASONS = (
    N_("Waits for the therapist to open it"),
    N_("Your therapist opens this module"),
    N_("Opens when the program starts"),
    N_("Opens when your program starts"),
    N_("Hidden from the patient"),
)
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


def _local_day(text: str) -> str:
    """ "9 March" in the reader's language ("9. maaliskuuta" in Finnish)."""
    day, _sep, month = text.partition(" ")
    if get_locale() == "en" or month not in _MONTHS:
        return text
    names = get_month_names("wide", context="format", locale=get_locale())
    return f"{day}. {names[_MONTHS.index(month) + 1]}"


def locked_reason(reason: str | None) -> str:
    """Why a module is locked, in the reader's language."""
    if not reason:
        return ""
    for pattern, message in _LOCK_REASONS:
        found = pattern.fullmatch(reason)
        if found:
            value = found.group(1)
            return _(message, value=_local_day(value) if " " in value else value)
    return translate(reason)


def _status_text() -> dict[str, str]:
    return {key: _(text) for key, text in STATUS_TEXT.items()}


templates.env.filters["locked_reason"] = locked_reason


# --- exercise forms: from the field schema to inputs and back -------------------------------------


@dataclass
class RowView:
    path: str
    number: int
    fields: list[FieldView]


@dataclass
class FieldView:
    """One input as the template draws it: name, id, label, value typed or saved, error."""

    name: str
    id: str
    label: str
    kind: str
    required: bool = False
    min: float | None = None
    max: float | None = None
    max_length: int | None = None
    choices: list[tuple[str, str]] = field(default_factory=list)
    low_label: str | None = None
    high_label: str | None = None
    rating: bool = False
    value: str = ""
    checked: bool = False
    error: str | None = None
    rows: list[RowView] = field(default_factory=list)
    can_add: bool = False

    @property
    def scale(self) -> list[int]:
        lo, hi = int(self.min or 0), int(self.max if self.max is not None else 10)
        return list(range(lo, hi + 1))

    @property
    def hint(self) -> str | None:
        if self.kind in ("int", "decimal") and self.min is not None and self.max is not None:
            return _(
                "A number from %(low)s to %(high)s",
                low=_number(self.min),
                high=_number(self.max),
            )
        if self.kind == "time":
            return _("For example 22:30")
        return None


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _lookup(container: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if isinstance(container, dict):
            container = container.get(part)
        elif isinstance(container, list) and part.isdigit() and int(part) < len(container):
            container = container[int(part)]
        else:
            return None
    return container


def _display(kind: str, value: Any) -> str:
    if value is None or isinstance(value, bool | dict | list):
        return ""
    text = str(value)
    if kind == "time" and re.fullmatch(r"\d{2}:\d{2}:00", text):
        return text[:5]
    return text


def _truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() in ("true", "on", "1", "yes"))


def html_id(exercise_id: str, name: str) -> str:
    return f"x-{exercise_id}-{name.replace('.', '-')}"


def build_fields(
    fields: list[FormFieldRead],
    data: Any,
    errors: dict[str, str],
    *,
    exercise_id: str,
    prefix: str = "",
) -> list[FieldView]:
    """Pair each schema field with its value and error; repeating groups show at least one row."""
    views = []
    for spec in fields:
        name = prefix + spec.name
        view = FieldView(
            name=name,
            id=html_id(exercise_id, name),
            label=spec.label,
            kind=spec.kind,
            required=spec.required,
            min=spec.min,
            max=spec.max,
            max_length=spec.max_length,
            choices=spec.choices,
            low_label=spec.low_label,
            high_label=spec.high_label,
            rating=spec.name.startswith("ratings."),
            error=errors.get(name),
        )
        value = _lookup(data, spec.name)
        if spec.kind == "rows":
            items = value if isinstance(value, list) else []
            view.rows = [
                RowView(
                    path=f"{name}.{index}",
                    number=index + 1,
                    fields=build_fields(
                        spec.fields,
                        items[index] if index < len(items) else {},
                        errors,
                        exercise_id=exercise_id,
                        prefix=f"{name}.{index}.",
                    ),
                )
                for index in range(max(len(items), 1))
            ]
            view.can_add = len(view.rows) < (spec.max_rows or MAX_ROWS)
        elif spec.kind == "bool":
            view.checked = _truthy(value)
        else:
            view.value = _display(spec.kind, value)
        views.append(view)
    return views


def _is_blank(value: Any) -> bool:
    if isinstance(value, dict):
        return all(_is_blank(v) for v in value.values())
    if isinstance(value, list):
        return all(_is_blank(v) for v in value)
    return value is None


def form_to_data(
    fields: list[FormFieldRead], form: dict[str, str], *, prefix: str = "", drop_blank: bool = True
) -> dict[str, Any]:
    """The exercise answer from posted fields, shaped like the JSON API's ``data``.

    Only names the schema knows are read, row indices are capped at the field's row
    limit, values stay as typed (validation turns them into numbers, times and so on),
    and with ``drop_blank`` rows left entirely empty are dropped.
    """
    data: dict[str, Any] = {}
    for spec in fields:
        name = prefix + spec.name
        if spec.kind == "rows":
            pattern = re.compile(re.escape(name) + r"\.(\d{1,4})\.")
            limit = spec.max_rows or MAX_ROWS
            indices = sorted({int(m.group(1)) for key in form if (m := pattern.match(key))})[:limit]
            rows = [
                form_to_data(spec.fields, form, prefix=f"{name}.{i}.", drop_blank=drop_blank)
                for i in indices
            ]
            data[spec.name] = [r for r in rows if not (drop_blank and _is_blank(r))]
            continue
        raw = form.get(name)
        if spec.kind == "bool":
            value: Any = True if _truthy(raw) else None
        else:
            value = raw if raw is not None and raw.strip() else None
        base, dot, _rest = spec.name.partition(".")
        if dot:  # answers.0, ratings.1: one list, one entry per question in order
            data.setdefault(base, []).append(value)
        else:
            data[spec.name] = value
    return data


def _row_action(data: dict[str, Any], action: str) -> bool:
    """Apply ``add_row:<path>`` or ``remove_row:<path>.<i>``; False if the path is not a list."""
    verb, _sep, target = action.partition(":")
    if verb == "add_row":
        rows = _lookup(data, target)
        if isinstance(rows, list):
            rows.append({})
            return True
        parent, _sep, key = target.rpartition(".")
        holder = _lookup(data, parent) if parent else data
        if isinstance(holder, dict) and key and holder.get(key) is None:
            holder[key] = [{}]
            return True
        return False
    if verb == "remove_row":
        parent, _sep, index = target.rpartition(".")
        rows = _lookup(data, parent)
        if isinstance(rows, list) and index.isdigit() and int(index) < len(rows):
            del rows[int(index)]
            return True
    return False


def error_map(errors: list[FieldError]) -> dict[str, str]:
    return {error["field"]: error["message"] for error in errors}


@dataclass
class ExerciseState:
    """An exercise form shown again after a post: what was typed, what is wrong, conflicts."""

    data: dict[str, Any]
    errors: dict[str, str]
    version: int
    conflict: ResponseRead | None = None


@dataclass
class ExerciseView:
    exercise: ExerciseRead
    fields: list[FieldView]
    version: int
    errors: list[tuple[str, str, str | None]]  # (message, label, html id to link to)
    response: ResponseRead | None
    conflict: ResponseRead | None = None
    conflict_items: list[AnswerItem] = field(default_factory=list)


def _labels(views: list[FieldView], into: dict[str, tuple[str, str]]) -> None:
    for view in views:
        into[view.name] = (view.label, view.id)
        for row in view.rows:
            _labels(row.fields, into)


def exercise_view(exercise: ExerciseRead, state: ExerciseState | None) -> ExerciseView:
    response = exercise.response
    data = state.data if state else (response.data if response and response.data else {})
    errors = state.errors if state else {}
    fields = build_fields(exercise.fields, data, errors, exercise_id=exercise.id)
    known: dict[str, tuple[str, str]] = {}
    _labels(fields, known)
    listed = []
    for name, message in errors.items():
        label, anchor = known.get(name, ("", None))
        listed.append((message, label, anchor))
    return ExerciseView(
        exercise=exercise,
        fields=fields,
        version=state.version if state else (response.version if response else 0),
        errors=listed,
        response=response,
        conflict=state.conflict if state else None,
        conflict_items=(
            answer_items(exercise.fields, state.conflict.data or {})
            if state and state.conflict
            else []
        ),
    )


# --- showing answers (therapist) ----------------------------------------------------------------------


@dataclass
class AnswerItem:
    label: str
    text: str | None = None
    headers: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)


def _show(value: Any) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return _("Yes") if value else _("No")
    if isinstance(value, float):
        return _number(round(value, 1))
    return str(value)


def _choice_text(spec: FormFieldRead, value: Any) -> str:
    for key, label in spec.choices:
        if key == value:
            return label
    return _show(value)


def _cell(spec: FormFieldRead, value: Any) -> str:
    if spec.kind == "rows":
        entries = value if isinstance(value, list) else []
        return (
            "; ".join(
                ", ".join(
                    f"{sub.label}: {_cell(sub, entry.get(sub.name))}"
                    for sub in spec.fields
                    if isinstance(entry, dict) and entry.get(sub.name) not in (None, "")
                )
                for entry in entries
            )
            or "—"
        )
    if spec.kind == "choice":
        return _choice_text(spec, value)
    if spec.kind == "time":
        return _display("time", value) or "—"
    return _show(value)


def answer_items(fields: list[FormFieldRead], data: dict[str, Any]) -> list[AnswerItem]:
    """A submitted answer as label/value pairs, with repeating groups as tables."""
    items = []
    for spec in fields:
        value = _lookup(data, spec.name)
        if spec.kind == "rows":
            entries = value if isinstance(value, list) else []
            items.append(
                AnswerItem(
                    label=spec.label,
                    headers=[sub.label for sub in spec.fields],
                    rows=[
                        [_cell(sub, entry.get(sub.name)) for sub in spec.fields]
                        for entry in entries
                        if isinstance(entry, dict)
                    ],
                )
            )
        else:
            items.append(AnswerItem(label=spec.label, text=_cell(spec, value)))
    return items


_DERIVED_LABELS = {
    "sleep_efficiency": N_("Sleep efficiency (%)"),
    "mean_sleep_efficiency": N_("Mean sleep efficiency (%)"),
    "planned_done_percent": N_("Planned activities done (%)"),
    "postponed_percent": N_("Worries postponed (%)"),
    "still_relevant_percent": N_("Still mattered at worry time (%)"),
    "suds_change": N_("Distress change"),
}


def _humanise(key: str) -> str:
    if key in _DERIVED_LABELS:
        return _(_DERIVED_LABELS[key])
    words = key.replace("_", " ")
    if words.endswith(" min"):
        words = words[:-4] + " (min)"
    return words[:1].upper() + words[1:]


def derived_items(derived: dict[str, Any] | None) -> list[AnswerItem]:
    """Computed figures (sleep efficiency, standard drinks …) in readable form."""
    items = []
    for key, value in (derived or {}).items():
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            headers = list(value[0].keys())
            items.append(
                AnswerItem(
                    label=_humanise(key),
                    headers=[_humanise(h) for h in headers],
                    rows=[[_show(v.get(h)) for h in headers] for v in value],
                )
            )
        elif isinstance(value, list):
            items.append(
                AnswerItem(label=_humanise(key), text=", ".join(_show(v) for v in value) or "—")
            )
        elif not isinstance(value, dict):
            items.append(AnswerItem(label=_humanise(key), text=_show(value)))
    return items


# --- patient pages --------------------------------------------------------------------------------


async def _current_enrollment(db: DbSession, principal: Principal) -> Enrollment:
    enrollment = None
    if principal.patient_id is not None:
        enrollment = await clinics_service.current_enrollment_for_patient(db, principal.patient_id)
    if enrollment is None:
        raise NotFound(_("You are not enrolled in a program at the moment."))
    return enrollment


def _reader_url(item: ModuleStatusRead, page: int | None = None, anchor: str = "") -> str:
    url = f"/patient/modules/{quote(item.program)}/{quote(item.key)}"
    if page:
        url += f"?page={page}"
    return url + (f"#{anchor}" if anchor else "")


async def _due_questionnaires(
    db: DbSession, enrollment: Enrollment, library: ContentLibrary, now: datetime
) -> list[Any]:
    """Questionnaires due now, from the questionnaires domain when it is installed."""
    try:
        from app.questionnaires import service as questionnaires
    except ImportError:
        return []
    due = getattr(questionnaires, "due_questionnaires", None)
    if due is None:
        return []
    return list(await due(db, enrollment, library, now))


async def dashboard(
    request: Request, principal: Principal, db: DbSession, *, now: datetime
) -> Response:
    """Where the patient is, what is next, how far they have come, and who is with them."""
    library = library_of(request)
    clinic = await clinics_service.get_clinic(db, principal.clinic_id)
    enrollment = (
        await clinics_service.current_enrollment_for_patient(db, principal.patient_id)
        if principal.patient_id is not None
        else None
    )
    context: dict[str, Any] = {"clinic": clinic, "enrollment": None}
    if enrollment is not None:
        view = await clinics_service.enrollment_view(db, enrollment.id)
        path = await service.load_path(db, enrollment, library, now=now)
        path_view = service.path_read(path, library, role=Role.PATIENT)
        upcoming = path.next_item()
        waiting = path.waiting_item()
        completed_ref = request.query_params.get("completed")
        just_completed = path.find(completed_ref) if completed_ref else None
        await audit.record(
            db,
            actor_for(request, principal),
            action="read",
            resource_type="dashboard",
            resource_id=enrollment.id,
            patient_id=enrollment.patient_id,
            clinic_id=enrollment.clinic_id,
        )
        context.update(
            enrollment=view,
            path=path_view,
            program_title=service.title_of(library, enrollment.program),
            upcoming=service.status_read(upcoming, library) if upcoming else None,
            waiting=service.status_read(waiting, library) if waiting else None,
            just_completed=(
                service.status_read(just_completed, library) if just_completed else None
            ),
            due=await _due_questionnaires(db, enrollment, library, now),
            reader_url=_reader_url,
        )
    return render(request, "patient/home.html", context)


@router.get("/patient/modules")
async def module_list(
    request: Request, principal: PatientUser, db: DbSession, clock: ClockDep
) -> Response:
    """The whole path: each module with its status, and why locked ones are not open yet."""
    enrollment = await _current_enrollment(db, principal)
    library = library_of(request)
    path = await service.read_path(
        db, actor_for(request, principal), Role.PATIENT, enrollment, library, now=clock.now()
    )
    clinic = await clinics_service.get_clinic(db, principal.clinic_id)
    return render(
        request,
        "patient/modules.html",
        {
            "clinic": clinic,
            "path": path,
            "status_text": _status_text(),
            "reader_url": _reader_url,
        },
    )


def _content_language(library: ContentLibrary, program: str) -> str:
    spec = library.programs.get(program)
    return spec.language if spec is not None else "en"


async def _reader(
    request: Request,
    principal: Principal,
    db: DbSession,
    *,
    enrollment: Enrollment,
    ref: str,
    cipher: Any,
    page: int | None,
    now: datetime,
    track: bool = True,
    states: dict[str, ExerciseState] | None = None,
    problems: list[tuple[str, str | None]] | None = None,
    status_code: int = 200,
) -> Response:
    library = library_of(request)
    try:
        view = await service.open_module(
            db,
            actor_for(request, principal),
            Role.PATIENT,
            enrollment,
            ref,
            library,
            cipher,
            page=page,
            now=now,
            track=track,
        )
    except AppError as exc:
        if exc.code != "module_locked":
            raise
        clinic = await clinics_service.get_clinic(db, principal.clinic_id)
        return render(
            request,
            "patient/locked.html",
            {"clinic": clinic, "reason": translate(exc.detail)},
            status_code=403,
        )
    detail = view.detail
    number = max(1, min(page or detail.last_page or 1, len(detail.pages)))
    current = detail.pages[number - 1]
    last = number == len(detail.pages)
    exercises = {e.id: e for e in detail.exercises}
    shown = [s.exercise_id for s in current.segments if s.exercise_id]
    trailing = [e.id for e in detail.exercises if e.page is None] if last else []
    states = states or {}
    clinic = await clinics_service.get_clinic(db, principal.clinic_id)
    zone = reader_zone(principal)
    return render(
        request,
        "patient/module.html",
        {
            "clinic": clinic,
            "module": detail,
            # Module text stays in the language it was written in, whatever the interface speaks.
            "content_language": _content_language(library, detail.program),
            "page": current,
            "number": number,
            "last": last,
            "forms": {
                eid: exercise_view(exercises[eid], states.get(eid)) for eid in [*shown, *trailing]
            },
            "trailing": trailing,
            "homework": [e for e in detail.exercises if e.homework],
            "problems": problems or [],
            "enrollment_id": enrollment.id,
            "base_url": _reader_url(detail),
            "saved": request.query_params.get("saved"),
            "submitted": request.query_params.get("submitted"),
            "exercise_feedback": await inbox.exercise_feedback(
                db,
                principal,
                enrollment,
                program=detail.program,
                module_key=detail.key,
                cipher=cipher,
                now=now,
            ),
        },
        status_code=status_code,
        zone=zone,
    )


@router.get("/patient/modules/{program}/{module}")
async def module_page(
    program: str,
    module: str,
    request: Request,
    principal: PatientUser,
    db: DbSession,
    clock: ClockDep,
    cipher: CipherDep,
    page: str | None = None,
) -> Response:
    """Read a module page by page; the page you are on is remembered for next time."""
    enrollment = await _current_enrollment(db, principal)
    ref = service.module_ref(enrollment.program, program, module)
    number = int(page) if page and page.isdigit() else None
    if number is not None:
        count = await _page_count(request, program, module)
        number = max(1, min(number, count))
    return await _reader(
        request,
        principal,
        db,
        enrollment=enrollment,
        ref=ref,
        cipher=cipher,
        page=number,
        now=clock.now(),
    )


async def _page_count(request: Request, program: str, module: str) -> int:
    library = library_of(request)
    source = library.programs.get(program)
    found = source.modules.get(module) if source else None
    if found is None:
        raise NotFound(_("This module is not on the path."))
    return len(found.pages)


@router.post("/patient/modules/{program}/{module}/complete")
async def complete_submit(
    program: str,
    module: str,
    request: Request,
    principal: PatientUser,
    db: DbSession,
    clock: ClockDep,
    cipher: CipherDep,
) -> Response:
    """'I have finished this module': back to the dashboard, which shows what opens next."""
    enrollment = await _current_enrollment(db, principal)
    ref = service.module_ref(enrollment.program, program, module)
    try:
        await service.complete_module(
            db, actor_for(request, principal), enrollment, ref, library_of(request), now=clock.now()
        )
    except service.HomeworkMissing as exc:
        count = await _page_count(request, program, module)
        return await _reader(
            request,
            principal,
            db,
            enrollment=enrollment,
            ref=ref,
            cipher=cipher,
            page=count,
            now=clock.now(),
            track=False,
            problems=[
                (_("Please submit this first: %(title)s", title=spec.title), f"x-{spec.id}")
                for spec in exc.missing
            ],
            status_code=409,
        )
    except AppError as exc:
        if exc.code != "enrollment_ended":
            raise
        count = await _page_count(request, program, module)
        return await _reader(
            request,
            principal,
            db,
            enrollment=enrollment,
            ref=ref,
            cipher=cipher,
            page=count,
            now=clock.now(),
            track=False,
            problems=[(exc.detail, None)],
            status_code=409,
        )
    return RedirectResponse(f"/patient?completed={quote(ref)}", status_code=303)


@router.post("/patient/modules/{program}/{module}/exercises/{exercise}")
async def exercise_submit(
    program: str,
    module: str,
    exercise: str,
    request: Request,
    principal: PatientUser,
    db: DbSession,
    clock: ClockDep,
    cipher: CipherDep,
    settings: SettingsDep,
) -> Response:
    """Save a draft, submit, or add/remove a row; on any problem the form comes back as typed."""
    enrollment = await _current_enrollment(db, principal)
    library = library_of(request)
    ref = service.module_ref(enrollment.program, program, module)
    source = library.programs.get(program)
    found = source.modules.get(module) if source else None
    if found is None:
        raise NotFound(_("This module is not on the path."))
    try:
        spec = found.exercise(exercise)
    except KeyError:
        raise NotFound(_("This module has no such exercise.")) from None
    form = await form_data(request)
    action = form.get("action", "save")
    # Each exercise sits on one page (or after the last); that is where the form comes back.
    page_number = service.exercise_pages(found).get(exercise, len(found.pages))
    version_text = form.get("version", "0")
    version = int(version_text) if version_text.isdigit() else 0
    schema = service.form_fields_read(field_schema(spec.type, spec))
    row_action = action.startswith(("add_row:", "remove_row:"))
    data = form_to_data(schema, form, drop_blank=not row_action)
    if row_action:
        _row_action(data, action)
    actor = actor_for(request, principal)
    now = clock.now()

    async def again(state: ExerciseState, status_code: int) -> Response:
        """The module page again with this exercise as typed and its problems shown."""
        return await _reader(
            request,
            principal,
            db,
            enrollment=enrollment,
            ref=ref,
            cipher=cipher,
            page=page_number,
            now=now,
            track=False,
            states={exercise: state},
            status_code=status_code,
        )

    try:
        if action == "submit":
            outcome = await service.submit_exercise(
                db,
                actor,
                enrollment,
                ref,
                exercise,
                library,
                cipher,
                data=data,
                version=version,
                grams_per_standard_drink=settings.grams_per_standard_drink,
                now=now,
            )
        else:
            outcome = await service.save_draft(
                db,
                actor,
                enrollment,
                ref,
                exercise,
                library,
                cipher,
                data=data,
                version=version,
                now=now,
            )
    except service.StaleDraft as exc:
        state = ExerciseState(
            data=data,
            errors={},
            version=exc.current.version if exc.current else 0,
            conflict=exc.current,
        )
        return await again(state, 409)
    except AppError as exc:
        if exc.code not in ("enrollment_ended", "too_long"):
            raise
        state = ExerciseState(data=data, errors={"": translate(exc.detail)}, version=version)
        return await again(state, exc.status_code)
    if outcome.errors:
        state = ExerciseState(
            data=data,
            errors=error_map(outcome.errors),
            version=outcome.response.version if outcome.response else version,
        )
        return await again(state, 422)
    flag = "submitted" if action == "submit" else "saved"
    query = f"?page={page_number}&{flag}={quote(exercise)}#x-{exercise}"
    target = f"/patient/modules/{quote(program)}/{quote(module)}{query}"
    return RedirectResponse(target, status_code=303)


# --- therapist pages -----------------------------------------------------------------------------


@dataclass
class WorkView:
    work: ExerciseWorkRead
    answers: list[AnswerItem]
    derived: list[AnswerItem]


def _work_views(library: ContentLibrary, work: list[ExerciseWorkRead]) -> list[WorkView]:
    views = []
    for item in work:
        source = library.programs.get(item.program)
        module = source.modules.get(item.module_key) if source else None
        schema: list[FormFieldRead] = []
        if module is not None:
            try:
                spec = module.exercise(item.exercise_id)
                schema = service.form_fields_read(field_schema(spec.type, spec))
            except KeyError:
                schema = []
        data = item.response.data or {}
        views.append(
            WorkView(
                work=item,
                answers=answer_items(schema, data) if item.response.data is not None else [],
                derived=derived_items(item.response.derived),
            )
        )
    return views


async def _scores_context(
    db: DbSession, enrollment: Enrollment, library: ContentLibrary, *, now: datetime, cipher: Any
) -> dict[str, Any]:
    """The questionnaires domain's section of this page, when it is installed."""
    try:
        from app.questionnaires import service as questionnaires
    except ImportError:
        return {}
    build = getattr(questionnaires, "therapist_scores_context", None)
    if build is None:
        return {}
    return dict(await build(db, enrollment, library, now=now, cipher=cipher))


async def _therapist_page(
    request: Request,
    principal: Principal,
    db: DbSession,
    enrollment: Enrollment,
    cipher: Any,
    *,
    now: datetime,
    errors: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    library = library_of(request)
    view = await clinics_service.enrollment_view(db, enrollment.id)
    path = await service.load_path(db, enrollment, library, now=now)
    work = await service.work_for(db, Role.THERAPIST, enrollment, library, cipher)
    history = await service.tailoring_history(db, enrollment.id)
    scores = await _scores_context(db, enrollment, library, now=now, cipher=cipher)
    await audit.record(
        db,
        actor_for(request, principal),
        action="read",
        resource_type="patient_work",
        resource_id=enrollment.id,
        patient_id=enrollment.patient_id,
        clinic_id=enrollment.clinic_id,
    )
    program = library.programs.get(enrollment.program)
    addable: dict[str, list[service.AddableModule]] = {}
    for option in service.addable_modules(library, path):
        addable.setdefault(option.program_title, []).append(option)
    zone = reader_zone(principal)
    return render(
        request,
        "therapist/patient.html",
        {
            **scores,
            "enrollment": view,
            "enrollment_id": enrollment.id,
            "path": service.path_read(path, library, role=Role.THERAPIST),
            "program_pacing": program.pacing if program else None,
            "work": _work_views(library, work),
            "history": history,
            "describe_change": lambda kind, detail: service.describe_change(kind, detail, _),
            "addable": addable,
            "status_text": _status_text(),
            "errors": errors or {},
            "form": form or {},
            "done": request.query_params.get("done"),
        },
        status_code=status_code,
        zone=zone,
    )


@router.get("/therapist/patients/{enrollment_id}")
async def patient_page(
    enrollment: TherapistEnrollment,
    request: Request,
    principal: TherapistUser,
    db: DbSession,
    clock: ClockDep,
    cipher: CipherDep,
) -> Response:
    """One patient's modules, submitted work and tailoring, for their therapist."""
    return await _therapist_page(request, principal, db, enrollment, cipher, now=clock.now())


_ACTION = TypeAdapter(TailoringAction)
_GATE = {"default": None, "on": True, "off": False}


def _tailoring_body(form: dict[str, str]) -> dict[str, Any]:
    body: dict[str, Any] = {"action": form.get("action", "")}
    if body["action"] == "set_pacing":
        body["therapist_gate"] = _GATE.get(form.get("therapist_gate", "default"), "invalid")
        days = form.get("min_days_between_modules", "").strip()
        body["min_days_between_modules"] = days or None
    elif body["action"] == "add_module":
        body["module"] = form.get("module", "")
        body["after"] = form.get("after") or None
    else:
        body["module"] = form.get("module", "")
    return body


@router.post("/therapist/patients/{enrollment_id}/tailoring")
async def tailoring_submit(
    enrollment: TherapistEnrollment,
    request: Request,
    principal: TherapistUser,
    db: DbSession,
    clock: ClockDep,
    cipher: CipherDep,
) -> Response:
    """Open early, hide, show, add, remove or change pacing from the patient page."""
    form = await form_data(request)
    try:
        action = _ACTION.validate_python(_tailoring_body(form))
    except ValidationError as exc:
        errors: dict[str, str] = {}
        for err in exc.errors():
            # loc is (tag, field) inside the chosen action; a bad or missing tag has no field.
            loc = err["loc"]
            name = str(loc[-1]) if len(loc) > 1 else "tailoring"
            message = translate(err["msg"].removeprefix("Value error, "))
            if len(loc) <= 1:
                message = _("Choose what to change.")
            errors.setdefault(name, message)
        return await _therapist_page(
            request,
            principal,
            db,
            enrollment,
            cipher,
            now=clock.now(),
            errors=errors,
            form=form,
            status_code=422,
        )
    try:
        await service.apply_tailoring(
            db,
            actor_for(request, principal),
            enrollment,
            action,
            library_of(request),
            now=clock.now(),
        )
    except AppError as exc:
        if exc.status_code == 404 and exc.code != "module_not_found":
            raise
        field_name = getattr(exc, "field", None) or "tailoring"
        return await _therapist_page(
            request,
            principal,
            db,
            enrollment,
            cipher,
            now=clock.now(),
            errors={field_name: translate(exc.detail)},
            form=form,
            status_code=exc.status_code,
        )
    return RedirectResponse(
        f"/therapist/patients/{enrollment.id}?done=1#tailoring", status_code=303
    )


@router.post("/therapist/patients/{enrollment_id}/tailoring/{change_id}/revert")
async def revert_submit(
    enrollment: TherapistEnrollment,
    change_id: Annotated[int, Path(ge=1)],
    request: Request,
    principal: TherapistUser,
    db: DbSession,
    clock: ClockDep,
    cipher: CipherDep,
) -> Response:
    """Undo one change from the tailoring history."""
    try:
        await service.revert_tailoring(
            db,
            actor_for(request, principal),
            enrollment,
            change_id,
            library_of(request),
            now=clock.now(),
        )
    except AppError as exc:
        if exc.status_code == 404:
            raise
        return await _therapist_page(
            request,
            principal,
            db,
            enrollment,
            cipher,
            now=clock.now(),
            errors={"history": translate(exc.detail)},
            status_code=exc.status_code,
        )
    return RedirectResponse(f"/therapist/patients/{enrollment.id}?done=1#history", status_code=303)
