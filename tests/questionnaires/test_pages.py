"""Patient pages: the questionnaire form, the crisis page, thank-you and score history."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from app.audit.models import AuditEvent
from app.content.service import get_library
from app.questionnaires.models import QuestionnaireResponse, RiskAlert
from app.questionnaires.service import neutral_band
from tests.conftest import make_settings
from tests.factories import build_world, login
from tests.questionnaires.helpers import gad7, phq9


def form(answers: dict[str, int]) -> dict[str, str]:
    return {key: str(value) for key, value in answers.items()}


class TestForm:
    async def test_every_item_is_a_fieldset_with_a_legend_and_labelled_radios(
        self, client, db, clock
    ):
        world = await build_world(db, clock.now())
        await login(client, world.patient_user.email)
        r = await client.get("/patient/questionnaires/phq9")
        assert r.status_code == 200
        html = r.text
        assert html.count("<fieldset") == 9 and html.count("<legend>") == 9
        assert html.count('type="radio"') == 36
        for radio_id in re.findall(r'type="radio" id="([^"]+)"', html):
            assert f'<label for="{radio_id}">' in html
        assert "Over the last 2 weeks" in html
        # The form needs no script: the only ones are vendored files (htmx), none inline.
        scripts = re.findall(r"<script([^>]*)>", html)
        assert scripts and all('src="/static/' in attrs for attrs in scripts), scripts
        assert 'name="csrf_token"' in html

    async def test_the_list_shows_what_is_due(self, client, db, clock):
        world = await build_world(db, clock.now())
        await login(client, world.patient_user.email)
        r = await client.get("/patient/questionnaires")
        assert r.status_code == 200
        assert 'href="/patient/questionnaires/phq9"' in r.text
        assert 'href="/patient/questionnaires/gad7"' in r.text

    async def test_missing_answers_are_422_linked_to_each_question_and_typed_answers_kept(
        self, client, db, clock
    ):
        world = await build_world(db, clock.now())
        await login(client, world.patient_user.email)
        answers = form(phq9(rest=2))
        del answers["q3"]
        answers["q5"] = "9"
        r = await client.post("/patient/questionnaires/phq9", data=answers)
        assert r.status_code == 422
        html = r.text
        assert 'href="#f-q3"' in html and 'href="#f-q5"' in html
        assert 'aria-describedby="e-q3"' in html and 'id="e-q3"' in html
        assert "Question 3: please choose" in html
        assert re.search(r'id="f-q1-2" name="q1" value="2"\s+checked', html)
        assert not re.search(r'name="q3" value="\d"\s+checked', html)
        assert await db.scalar(select(QuestionnaireResponse.id)) is None

    async def test_an_empty_form_is_422_not_500(self, client, db, clock):
        world = await build_world(db, clock.now())
        await login(client, world.patient_user.email)
        r = await client.post("/patient/questionnaires/gad7", data={})
        assert r.status_code == 422 and r.text.count('class="error"') == 7

    async def test_unknown_questionnaire_is_404(self, client, db, clock):
        world = await build_world(db, clock.now())
        await login(client, world.patient_user.email)
        assert (await client.get("/patient/questionnaires/nope")).status_code == 404
        assert (await client.post("/patient/questionnaires/nope", data={})).status_code == 404

    async def test_not_due_says_so_kindly(self, client, db, clock):
        world = await build_world(db, clock.now())
        await login(client, world.patient_user.email)
        r = await client.get("/patient/questionnaires/audit")
        assert r.status_code == 200 and "not due right now" in r.text
        assert "<fieldset" not in r.text
        r = await client.post("/patient/questionnaires/audit", data={"q1": "0"})
        assert r.status_code == 409 and "not due right now" in r.text


class TestAfterSubmitting:
    async def test_a_self_harm_answer_leads_to_the_crisis_page(self, client, db, clock):
        world = await build_world(db, clock.now())
        world.clinic.crisis_line_name = "Crisis Helpline"
        await db.commit()
        await login(client, world.patient_user.email)
        r = await client.post("/patient/questionnaires/phq9", data=form(phq9(q9=2, rest=0)))
        assert r.status_code == 303
        assert r.headers["location"] == "/patient/questionnaires/phq9/done"
        page = await client.get(r.headers["location"])
        assert page.status_code == 200
        html = page.text
        assert "Thank you for telling us" in html
        assert 'href="tel:112"' in html
        assert "Crisis Helpline" in html and 'href="tel:0800100100"' in html
        assert "not watched around the clock" in html
        assert world.therapist.full_name in html
        assert await db.scalar(select(RiskAlert.level)) == "urgent"

    async def test_otherwise_a_thank_you_with_neutral_words(self, client, db, clock):
        world = await build_world(db, clock.now())
        await login(client, world.patient_user.email)
        r = await client.post("/patient/questionnaires/phq9", data=form(phq9(rest=3)))
        page = await client.get(r.headers["location"])
        html = page.text
        assert "Thank you" in html and "Thank you for telling us" not in html
        assert "<strong>24</strong> out of 27" in html
        assert "the highest range" in html
        assert "severe" not in html.lower()
        assert 'href="/patient/questionnaires/gad7"' in html  # the next one due

    async def test_done_without_an_answer_goes_back_to_the_form(self, client, db, clock):
        world = await build_world(db, clock.now())
        await login(client, world.patient_user.email)
        r = await client.get("/patient/questionnaires/phq9/done")
        assert r.status_code == 303 and r.headers["location"] == "/patient/questionnaires/phq9"


class TestScores:
    async def test_chart_and_table_with_neutral_ranges(self, client, db, clock):
        world = await build_world(db, clock.now())
        await login(client, world.patient_user.email)
        await client.post("/patient/questionnaires/phq9", data=form(phq9(rest=2)))
        await client.post("/patient/questionnaires/gad7", data=form(gad7(0)))
        clock.advance(timedelta(days=7))
        await login(client, world.patient_user.email)
        await client.post("/patient/questionnaires/phq9", data=form(phq9(rest=1)))
        r = await client.get("/patient/scores")
        assert r.status_code == 200
        html = r.text
        assert html.count("<svg") == 2 and 'role="img"' in html
        assert html.count('class="chart-dot"') == 3
        assert "<td>16</td>" in html and "<td>8</td>" in html
        assert "Start" in html and "Week 2" in html
        assert "moderately severe" not in html and "mild" not in html
        assert "style=" not in html  # the CSP forbids inline styles
        audit = await db.scalar(
            select(AuditEvent.action).where(
                AuditEvent.request_path == "/patient/scores",
                AuditEvent.patient_id == world.patient.id,
            )
        )
        assert audit == "read"

    async def test_no_answers_yet(self, client, db, clock):
        world = await build_world(db, clock.now())
        await login(client, world.patient_user.email)
        r = await client.get("/patient/scores")
        assert r.status_code == 200 and "No answers yet" in r.text and "<svg" not in r.text


def _library():
    settings = make_settings()
    return get_library(settings.content_dir, settings.content_overlay)


@pytest.mark.parametrize("code", sorted(_library().instruments))
def test_every_band_has_neutral_words_ordered_by_score(code):
    instrument = _library().instrument(code)
    words = [neutral_band(instrument, band.label) for band in instrument.bands]
    scale = ["the lowest range", "a lower range", "the middle range", "a higher range"]
    scale.append("the highest range")
    assert words[0] == "the lowest range" and words[-1] == "the highest range"
    positions = [scale.index(w) for w in words]
    assert positions == sorted(positions)
    for band, word in zip(instrument.bands, words, strict=True):
        assert band.label not in word
