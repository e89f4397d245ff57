"""One enrollment as a FHIR R4 Bundle, validated with the ``fhir.resources`` models.

- **Patient** with minimal identifiers (Tuki's patient id; no name, contact or birth date);
- **Practitioner** (the therapist, by identifier only);
- **CarePlan** for the program and one **Task** per module on the patient's path;
- **QuestionnaireResponse** (item answers as integers) and an **Observation** with the
  total and its severity band per completed questionnaire (LOINC-coded where one exists);
- **Communication** per message: who, when, read, tags. Message bodies are never included.

fhir.resources ships FHIR 4.3 (R4B) models, the R4-compatible release; every resource
used here has the same shape in R4 (4.0.1). The bundle is validated before it leaves, so a
mistake is a server error in tests, not an invalid document at a receiving system.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.clinics.models import Enrollment
from app.config import Settings
from app.content.loader import ContentLibrary
from app.inbox.models import Message
from app.programs import service as programs
from app.programs.catalogue import program_title
from app.questionnaires import service as questionnaires

# LOINC codes for totals of instruments that have one.
LOINC_TOTALS = {
    "phq9": ("44261-6", "Patient Health Questionnaire 9 item (PHQ-9) total score [Reported]"),
    "gad7": ("70274-6", "Generalized anxiety disorder 7 item (GAD-7) total score [Reported.PHQ]"),
}

TASK_STATUS = {
    "completed": "completed",
    "in_progress": "in-progress",
    "available": "ready",
    "locked": "draft",
}
CAREPLAN_STATUS = {
    "invited": "draft",
    "active": "active",
    "paused": "on-hold",
    "completed": "completed",
    "dropped": "revoked",
    "closed": "completed",
}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _clean(resource: dict[str, Any]) -> dict[str, Any]:
    """Leave out empty values: FHIR forbids empty elements."""
    return {k: v for k, v in resource.items() if v not in (None, [], {}, "")}


async def enrollment_bundle(
    db: AsyncSession,
    enrollment: Enrollment,
    *,
    settings: Settings,
    library: ContentLibrary,
    now: datetime,
) -> dict[str, Any]:
    """The validated bundle as JSON-ready data."""
    base = settings.base_url.rstrip("/") + "/fhir"
    patient_ref = f"Patient/{enrollment.patient_id}"
    therapist_ref = f"Practitioner/{enrollment.therapist_id}"
    careplan_ref = f"CarePlan/{enrollment.id}"
    entries: list[dict[str, Any]] = [
        {
            "resourceType": "Patient",
            "id": str(enrollment.patient_id),
            "identifier": [{"system": f"{base}/patient", "value": str(enrollment.patient_id)}],
            "active": enrollment.status in ("invited", "active", "paused"),
        },
        {
            "resourceType": "Practitioner",
            "id": str(enrollment.therapist_id),
            "identifier": [
                {"system": f"{base}/practitioner", "value": str(enrollment.therapist_id)}
            ],
        },
    ]
    path = await programs.load_path(db, enrollment, library, now=now)
    tasks = []
    for position, item in enumerate(path.items, start=1):
        status = "cancelled" if item.hidden else TASK_STATUS[item.verdict.status.value]
        task_id = f"{enrollment.id}-{position}"
        tasks.append(f"Task/{task_id}")
        entries.append(
            _clean(
                {
                    "resourceType": "Task",
                    "id": task_id,
                    "identifier": [{"system": f"{base}/module", "value": item.ref}],
                    "basedOn": [{"reference": careplan_ref}],
                    "status": status,
                    "intent": "plan",
                    "description": item.module.title,
                    "for": {"reference": patient_ref},
                    "owner": {"reference": patient_ref},
                    "executionPeriod": _clean(
                        {
                            "start": _iso(item.row.started_at),
                            "end": _iso(item.row.completed_at),
                        }
                    ),
                    "lastModified": _iso(item.row.completed_at or item.row.started_at),
                }
            )
        )
    entries.append(
        _clean(
            {
                "resourceType": "CarePlan",
                "id": str(enrollment.id),
                "identifier": [{"system": f"{base}/enrollment", "value": str(enrollment.id)}],
                "status": CAREPLAN_STATUS.get(enrollment.status, "unknown"),
                "intent": "plan",
                "title": program_title(enrollment.program),
                "subject": {"reference": patient_ref},
                "period": _clean(
                    {"start": _iso(enrollment.activated_at), "end": _iso(enrollment.ended_at)}
                ),
                "created": _iso(enrollment.created_at),
                "author": {"reference": therapist_ref},
                "activity": [{"reference": {"reference": ref}} for ref in tasks],
            }
        )
    )
    history = await questionnaires.score_history(db, enrollment.id)
    for code, points in history.items():
        spec = library.instruments.get(code)
        title = spec.title if spec else code
        for point in points:
            response_id = f"qr-{point.id}"
            entries.append(
                {
                    "resourceType": "QuestionnaireResponse",
                    "id": response_id,
                    "questionnaire": f"{base}/Questionnaire/{code}",
                    "status": "completed",
                    "subject": {"reference": patient_ref},
                    "authored": _iso(point.completed_at),
                    "author": {"reference": patient_ref},
                    "item": [
                        {"linkId": item_id, "answer": [{"valueInteger": int(value)}]}
                        for item_id, value in point.answers.items()
                    ],
                }
            )
            codings = [{"system": f"{base}/instrument", "code": code, "display": title}]
            if code in LOINC_TOTALS:
                loinc, display = LOINC_TOTALS[code]
                codings.insert(0, {"system": "http://loinc.org", "code": loinc, "display": display})
            entries.append(
                {
                    "resourceType": "Observation",
                    "id": f"obs-{point.id}",
                    "status": "final",
                    "category": [
                        {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                    "code": "survey",
                                }
                            ]
                        }
                    ],
                    "code": {"coding": codings, "text": f"{title} total"},
                    "subject": {"reference": patient_ref},
                    "effectiveDateTime": _iso(point.completed_at),
                    "valueInteger": int(point.total),
                    "interpretation": [{"text": point.band}],
                    "derivedFrom": [{"reference": f"QuestionnaireResponse/{response_id}"}],
                }
            )
    messages = await db.execute(
        select(
            Message.id,
            Message.sender_role,
            Message.created_at,
            Message.read_at,
            Message.exercise_response_id,
            Message.questionnaire_response_id,
            Message.tag_autonomy,
            Message.tag_alliance,
            Message.tag_emotion_regulation,
        )
        .where(Message.enrollment_id == enrollment.id)
        .order_by(Message.created_at, Message.id)
    )
    for m in messages:
        from_patient = m.sender_role == "patient"
        tags = [
            name
            for name, flag in (
                ("autonomy", m.tag_autonomy),
                ("alliance", m.tag_alliance),
                ("emotion_regulation", m.tag_emotion_regulation),
            )
            if flag
        ]
        about = []
        if m.questionnaire_response_id:
            about.append({"reference": f"QuestionnaireResponse/qr-{m.questionnaire_response_id}"})
        entries.append(
            _clean(
                {
                    "resourceType": "Communication",
                    "id": f"msg-{m.id}",
                    "status": "completed",
                    "subject": {"reference": patient_ref},
                    "sender": {"reference": patient_ref if from_patient else therapist_ref},
                    "recipient": [{"reference": therapist_ref if from_patient else patient_ref}],
                    "sent": _iso(m.created_at),
                    "received": _iso(m.read_at),
                    "topic": {
                        "text": "feedback"
                        if m.exercise_response_id or m.questionnaire_response_id
                        else "message"
                    },
                    "category": [
                        {"coding": [{"system": f"{base}/support-function", "code": tag}]}
                        for tag in tags
                    ],
                    "about": about,
                }
            )
        )
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": _iso(now),
        "entry": [
            {"fullUrl": f"{base}/{e['resourceType']}/{e['id']}", "resource": e} for e in entries
        ],
    }
    validated = Bundle.model_validate(bundle)
    data: dict[str, Any] = validated.model_dump(mode="json", exclude_none=True)
    return data
