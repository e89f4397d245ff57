"""The therapist's score partial: labels, reliable change, summary-wording notice, alerts."""

from __future__ import annotations

from datetime import timedelta

from app.content.service import get_library
from app.questionnaires.models import QuestionnaireResponse
from app.questionnaires.service import score_history, therapist_scores_context
from app.templating import templates
from tests.conftest import make_settings
from tests.factories import build_world, login
from tests.querycount import count_statements
from tests.questionnaires.helpers import create_alert, phq9


def library():
    settings = make_settings()
    return get_library(settings.content_dir, settings.content_overlay)


def render_partials(context: dict) -> str:
    context = {"csrf_token": "t", **context}
    return templates.env.get_template("therapist/_scores.html").render(
        context
    ) + templates.env.get_template("therapist/_alerts.html").render(context)


async def test_scores_partial_shows_labels_change_and_wording_notice(client, db, clock, app):
    world = await build_world(db, clock.now())
    await login(client, world.patient_user.email)
    url = f"/api/v1/enrollments/{world.enrollment.id}/questionnaires"
    await client.post(url, json={"instrument": "phq9", "answers": phq9(rest=2)})  # 16
    clock.advance(timedelta(days=7))
    await login(client, world.patient_user.email)
    await client.post(url, json={"instrument": "phq9", "answers": phq9(q9=1, rest=1)})  # 9
    context = await therapist_scores_context(
        db, world.enrollment, library(), now=clock.now(), cipher=app.state.cipher
    )
    phq = next(s for s in context["score_instruments"] if s["code"] == "phq9")
    assert [p.total for p in phq["points"]] == [16, 9]
    assert phq["reliable_change"].result == "improved"
    assert [d.code for d in context["scores_due"]] == ["gad7"]
    assert [a.level for a in context["risk_alerts"]] == ["urgent"]

    html = render_partials(context)
    assert "Summary wording." in html and "own words" in html
    assert "moderately severe" in html and "mild" in html
    assert "16 → 9" in html and "reliable improvement" in html
    assert "Not answered yet." in html  # the GAD-7 baseline is still missing
    assert "Due now: Anxiety questionnaire (GAD-7) (baseline)" in html
    assert "question 9 (q9)" in html
    assert "Answers: Week 2" in html and "Answers: Start" in html
    assert (
        "Thoughts that you would be better off dead, or of hurting yourself: <strong>On some days</strong> (1)"
        in html
    )
    assert f'action="/therapist/alerts/{context["risk_alerts"][0].id}/acknowledge"' in html


async def test_context_shows_an_acknowledged_note_to_the_therapist(client, db, clock, app):
    world = await build_world(db, clock.now())
    alert_id = await create_alert(db, world.enrollment)
    await login(client, world.therapist.email)
    await client.post(f"/api/v1/alerts/{alert_id}/acknowledge", json={"note": "Spoke by phone"})
    context = await therapist_scores_context(
        db, world.enrollment, library(), cipher=app.state.cipher
    )
    html = render_partials(context)
    assert "Spoke by phone" in html and world.therapist.full_name in html
    assert "No open alerts." not in html and 'class="ack-form"' not in html


async def test_context_query_count_is_constant(db, clock, engine):
    world = await build_world(db, clock.now())
    counts = []
    for target in (1, 12):
        existing = len((await score_history(db, world.enrollment.id)).get("phq9", []))
        for week in range(existing, target):
            db.add(
                QuestionnaireResponse(
                    enrollment_id=world.enrollment.id,
                    instrument="phq9",
                    occasion="baseline" if week == 0 else "weekly",
                    week=week,
                    answers=phq9(),
                    total=8,
                    band="mild",
                    completed_at=clock.now() + timedelta(days=7 * week),
                )
            )
            await create_alert(db, world.enrollment)
        await db.commit()
        with count_statements(engine) as log:
            context = await therapist_scores_context(
                db, world.enrollment, library(), now=clock.now() + timedelta(days=90)
            )
        assert len(context["score_instruments"][0]["points"]) == target
        assert len(context["risk_alerts"]) == target
        counts.append(log.count)
    assert counts[0] == counts[1], counts
