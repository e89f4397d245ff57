"""The main pages and endpoints send a small, fixed number of SQL statements per request.

The caseload, the clinic and one patient's history grow from 5 to 50 to 500 rows; every
request must send exactly as many statements at each size (no N+1), and no more than its
ceiling. Counted with a ``before_cursor_execute`` listener (session lookup, access check
and audit rows included); savepoints are not counted.
"""

from __future__ import annotations

from datetime import timedelta

from tests.factories import build_world, login
from tests.perf.seed import add_caseload, add_history
from tests.querycount import count_statements

API = "/api/v1"
SIZES = (5, 50, 500)

# Ceilings: what each request sends today, so a new per-row query (or a creeping extra
# statement) fails here. Raise one only with a reason in the change that needs it.
CEILINGS = {
    # Every request's first statement is the session lookup, which also reads what the
    # principal carries: the colleagues a therapist covers, the clinic's zone and, for a
    # patient, their patient row and the clinic's crisis contacts. A page adds one
    # statement for both badges of the layout (app/web/badges.py).
    "patient": {
        "dashboard": 10,
        "module page": 11,
        "questionnaire history": 6,
    },
    "therapist": {
        "home / work list": 10,
        "work list JSON": 9,
        "caseload": 5,
        "patient page": 13,
        "timeline": 8,
        # The session lookup, one SELECT of enrollment + rollup + thresholds + clinic +
        # path + waits, the audit row (QUALITY.md 4.3 A: at most 4).
        "enrollment adherence": 3,
        "alerts": 3,
        "enrollments": 4,
        "questionnaire history": 6,
    },
    "admin": {
        "home": 7,
        "enrollments": 4,
        "adherence report": 7,
    },
}


def _urls(enrollment_id: int) -> dict[str, dict[str, str]]:
    return {
        "patient": {
            "dashboard": "/patient",
            "module page": "/patient/modules/depression/01-understanding-low-mood",
            "questionnaire history": f"{API}/enrollments/{enrollment_id}/questionnaires",
        },
        "therapist": {
            "home / work list": "/therapist",
            "work list JSON": f"{API}/inbox",
            "caseload": "/therapist/caseload",
            "patient page": f"/therapist/patients/{enrollment_id}",
            "timeline": f"/therapist/patients/{enrollment_id}/timeline",
            "enrollment adherence": f"{API}/enrollments/{enrollment_id}/adherence",
            "alerts": f"{API}/alerts",
            "enrollments": f"{API}/enrollments",
            "questionnaire history": f"{API}/enrollments/{enrollment_id}/questionnaires",
        },
        "admin": {
            "home": "/admin",
            "enrollments": f"{API}/enrollments",
            "adherence report": f"{API}/reports/adherence",
        },
    }


async def test_statements_per_request_do_not_grow_with_rows(app, client_factory, db, clock, engine):
    now = clock.now()
    world = await build_world(db, now - timedelta(days=30))
    cipher = app.state.cipher
    clients = {
        "patient": client_factory(),
        "therapist": client_factory(),
        "admin": client_factory(),
    }
    await login(clients["patient"], world.patient_user.email)
    await login(clients["therapist"], world.therapist.email)
    await login(clients["admin"], world.admin.email)
    urls = _urls(world.enrollment.id)
    counts: dict[tuple[str, str], list[int]] = {}
    made = 0
    for size in SIZES:
        await add_caseload(db, world.clinic, world.therapist, now, size - made, cipher=cipher)
        await add_history(db, world.enrollment.id, now - timedelta(days=1), size - made)
        made = size
        await db.commit()
        for role, pages in urls.items():
            client = clients[role]
            for name, url in pages.items():
                await client.get(url)  # first views may write receipts; measure a steady view
                with count_statements(engine) as log:
                    response = await client.get(url)
                assert response.status_code == 200, (role, name, response.text[:300])
                counts.setdefault((role, name), []).append(log.count)
        listed = (await clients["therapist"].get(f"{API}/enrollments?limit=100")).json()
        assert listed["total"] >= size, listed
    grew = {key: seen for key, seen in counts.items() if len(set(seen)) != 1}
    assert not grew, f"statements for {SIZES} rows: {grew}"
    over = {
        key: (seen[0], CEILINGS[key[0]][key[1]])
        for key, seen in counts.items()
        if seen[0] > CEILINGS[key[0]][key[1]]
    }
    assert not over, f"(sent, ceiling) over the ceiling: {over}"
