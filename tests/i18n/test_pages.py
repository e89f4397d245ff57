"""Pages speak the user's language: the profile first, then the browser, then English."""

from __future__ import annotations

import asyncio

from fastapi import Request
from fastapi.responses import PlainTextResponse, Response
from sqlalchemy import select

from app.accounts.dependencies import MaybeUser
from app.accounts.models import User
from app.reminders.models import Notification
from app.reminders.render import PATIENT_LINE
from app.templating import render
from app.web.i18n import gettext
from tests.factories import PASSWORD, build_world, csrf_from, login

FI = {"accept-language": "fi-FI,fi;q=0.9"}


async def _set_language(db, user: User, language: str | None) -> None:  # type: ignore[no-untyped-def]
    user.language = language
    await db.commit()


async def _page_login(client, email: str, headers: dict[str, str] | None = None) -> None:  # type: ignore[no-untyped-def]
    r = await client.post(
        "/login",
        data={"email": email, "password": PASSWORD},
        headers=headers or {},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text


class TestLoginPage:
    async def test_browser_asking_for_finnish_gets_finnish(self, client):
        r = await client.get("/login", headers=FI)
        assert r.status_code == 200
        assert '<html lang="fi">' in r.text
        assert "<h1>Kirjaudu sisään</h1>" in r.text
        assert "Sähköpostiosoite" in r.text and "Salasana" in r.text
        assert "Log in" not in r.text

    async def test_english_when_nothing_says_otherwise(self, client):
        for headers in ({}, {"accept-language": "sv-SE,sv;q=0.9,de;q=0.5"}):
            r = await client.get("/login", headers=headers)
            assert '<html lang="en">' in r.text and "<h1>Log in</h1>" in r.text, headers

    async def test_failed_login_message_is_translated_on_the_page_only(self, client, db, clock):
        world = await build_world(db, clock.now())
        r = await client.post(
            "/login", data={"email": world.admin.email, "password": "wrong"}, headers=FI
        )
        assert r.status_code == 401
        assert "Sähköpostiosoite tai salasana on väärin." in r.text
        api = await client.post(
            "/api/v1/auth/login",
            json={"email": world.admin.email, "password": "wrong"},
            headers=FI,
        )
        assert api.status_code == 401
        assert api.json()["detail"] == "The e-mail address or password is not correct."


class TestProfileLanguage:
    async def test_finnish_patient_sees_finnish(self, client, db, clock):
        world = await build_world(db, clock.now())
        await _set_language(db, world.patient_user, "fi")
        await login(client, world.patient_user.email)
        r = await client.get("/patient")
        assert r.status_code == 200
        assert '<html lang="fi">' in r.text
        first_name = world.patient_user.full_name.split(" ")[0]
        assert f"Hei, {first_name}" in r.text
        for text in ("Oma ohjelma", "Tarvitsetko apua nyt?", "Kirjaudu ulos", "Mitä seuraavaksi"):
            assert text in r.text, text
        assert "Need help now?" not in r.text and "My program" not in r.text

    async def test_finnish_therapist_sees_finnish_work_list(self, client, db, clock):
        world = await build_world(db, clock.now())
        await _set_language(db, world.therapist, "fi")
        await login(client, world.therapist.email)
        r = await client.get("/therapist")
        assert r.status_code == 200 and '<html lang="fi">' in r.text
        for text in ("Omat potilaat", "Odottaa vastaustasi", "Kaikki potilaat", "Hiljentyneet"):
            assert text in r.text, text
        assert "Waiting for your reply" not in r.text

    async def test_finnish_admin_sees_finnish_clinic_page(self, client, db, clock):
        world = await build_world(db, clock.now())
        await _set_language(db, world.admin, "fi")
        await login(client, world.admin.email)
        r = await client.get("/admin")
        assert r.status_code == 200 and '<html lang="fi">' in r.text
        for text in ("Hoitojaksot", "Ota potilas hoitoon", "Terapeutit", "Lisää terapeutti"):
            assert text in r.text, text
        assert "Enrollments" not in r.text

    async def test_profile_wins_over_the_browser(self, client, db, clock):
        world = await build_world(db, clock.now())
        await _set_language(db, world.patient_user, "en")
        await login(client, world.patient_user.email)
        r = await client.get("/patient", headers=FI)
        assert '<html lang="en">' in r.text
        assert "Need help now?" in r.text and "Tarvitsetko apua nyt?" not in r.text

    async def test_no_profile_language_follows_the_browser(self, client, db, clock):
        world = await build_world(db, clock.now())
        await _set_language(db, world.patient_user, None)
        await login(client, world.patient_user.email)
        assert "Tarvitsetko apua nyt?" in (await client.get("/patient", headers=FI)).text
        assert "Need help now?" in (await client.get("/patient")).text

    async def test_messages_written_by_the_pages_are_translated(self, client, db, clock):
        """Form errors come from app/*/pages.py, so this checks the request's locale reaches them."""
        world = await build_world(db, clock.now())
        await _set_language(db, world.admin, "fi")
        await login(client, world.admin.email)
        r = await client.post(
            "/admin/settings",
            data={"emergency_number": "", "crisis_line_name": "Apu", "crisis_line_number": "x"},
        )
        assert r.status_code == 422
        assert "Anna hätänumero, esimerkiksi 112." in r.text
        assert "Käytä numeroita ja välilyöntejä" in r.text
        assert "Tarkista lomake" in r.text


class TestLanguageSelector:
    async def test_choosing_a_language_changes_the_pages(self, client_factory, db, clock):
        world = await build_world(db, clock.now())
        client = client_factory()
        await _page_login(client, world.patient_user.email)
        account = await client.get("/account")
        assert 'id="f-language"' in account.text and "Same as my browser" in account.text
        token = csrf_from(account.text)

        r = await client.post("/account/language", data={"csrf_token": token, "language": "fi"})
        assert r.status_code == 303 and r.headers["location"] == "/account?language=saved"
        saved = await client.get(r.headers["location"])
        assert "Kielivalintasi on tallennettu." in saved.text
        assert '<option value="fi" lang="fi" selected>Suomi</option>' in saved.text
        language = await db.scalar(
            select(User.language)
            .where(User.id == world.patient_user.id)
            .execution_options(populate_existing=True)
        )
        assert language == "fi"

        r = await client.post("/account/language", data={"csrf_token": token, "language": ""})
        assert r.status_code == 303
        language = await db.scalar(
            select(User.language)
            .where(User.id == world.patient_user.id)
            .execution_options(populate_existing=True)
        )
        assert language is None
        assert "Need help now?" in (await client.get("/patient")).text

    async def test_unknown_language_is_refused(self, client_factory, db, clock):
        world = await build_world(db, clock.now())
        client = client_factory()
        await _page_login(client, world.patient_user.email)
        token = csrf_from((await client.get("/account")).text)
        r = await client.post("/account/language", data={"csrf_token": token, "language": "xx"})
        assert r.status_code == 422
        assert "Choose one of the languages shown." in r.text


class TestEscaping:
    async def test_values_inside_translated_sentences_stay_escaped(self, client, db, clock):
        world = await build_world(db, clock.now())
        world.patient_user.full_name = "<b>Mari</b> Virtanen"
        await _set_language(db, world.patient_user, "fi")
        await login(client, world.patient_user.email)
        r = await client.get("/patient")
        assert "Hei, &lt;b&gt;Mari&lt;/b&gt;" in r.text
        assert "<b>Mari</b>" not in r.text


class TestConcurrency:
    async def test_interleaved_requests_keep_their_own_language(
        self, app, database, client_factory, monkeypatch
    ):
        """Both requests have chosen their language before either builds its page, so a
        language shared between requests (a global switch) would put one in the wrong one."""
        # On SQLite each request queues for the write gate for its whole length; this probe
        # writes nothing, so let the two run side by side as they do on PostgreSQL.
        monkeypatch.setattr(database, "write_gate", None)
        arrived: list[str] = []
        everyone_here = asyncio.Event()

        async def probe(request: Request, principal: MaybeUser) -> Response:
            arrived.append(request.state.locale)
            if len(arrived) == 2:
                everyone_here.set()
            await asyncio.wait_for(everyone_here.wait(), timeout=5)
            message = gettext("Log in")  # as app/*/pages.py do, before the page is drawn
            page = render(request, "login.html").body.decode()
            return PlainTextResponse(f"{message}\n{page}")

        app.add_api_route("/i18n-probe", probe, methods=["GET"])
        finnish, english = client_factory(), client_factory()
        fi, en = await asyncio.gather(
            finnish.get("/i18n-probe", headers=FI),
            english.get("/i18n-probe", headers={"accept-language": "en"}),
        )
        assert fi.status_code == en.status_code == 200, (fi.text, en.text)
        assert sorted(arrived) == ["en", "fi"]
        assert fi.text.startswith("Kirjaudu sisään\n")
        assert '<html lang="fi">' in fi.text and "<h1>Kirjaudu sisään</h1>" in fi.text
        assert en.text.startswith("Log in\n")
        assert '<html lang="en">' in en.text and "<h1>Log in</h1>" in en.text


class TestTextsMadeOutsideTemplates:
    """Lines built in Python (tailoring history, in-app reminders, chart descriptions) follow
    the reader's language on pages, while the JSON API keeps English."""

    async def test_tailoring_history_and_notifications_in_finnish(self, client_factory, db, clock):
        world = await build_world(db, clock.now())
        await _set_language(db, world.therapist, "fi")
        await _set_language(db, world.patient_user, "fi")
        therapist = client_factory()
        await login(therapist, world.therapist.email)
        module = "03-values-and-planning"
        changed = await therapist.post(
            f"/api/v1/enrollments/{world.enrollment.id}/tailoring",
            json={"action": "open_early", "module": module},
        )
        assert changed.status_code in (200, 201), changed.text
        assert changed.json()["description"].startswith("Opened “"), "the API stays English"
        page = await therapist.get(f"/therapist/patients/{world.enrollment.id}")
        assert "Avasi moduulin ”" in page.text and "etuajassa" in page.text

        db.add(Notification(user_id=world.patient_user.id, text=PATIENT_LINE, link="/patient"))
        await db.commit()
        patient = client_factory()
        await login(patient, world.patient_user.email)
        bell = await patient.get("/notifications")
        assert "Tukissa odottaa sinulle jotain uutta." in bell.text
        assert PATIENT_LINE not in bell.text


class TestServiceMessagesWithNumbers:
    """Refusals built by services with a number in them: Finnish on the page, English in the API."""

    async def test_a_short_password_is_explained_in_finnish_on_the_page(self, client, db, clock):
        world = await build_world(db, clock.now())
        await _set_language(db, world.admin, "fi")
        token = await login(client, world.admin.email)
        page = await client.post(
            "/account/password",
            data={
                "current_password": PASSWORD,
                "new_password": "lyhyt",
                "new_password_confirm": "lyhyt",
                "csrf_token": token,
            },
        )
        assert page.status_code == 422
        assert "Käytä vähintään 10 merkkiä." in page.text
        api = await client.post(
            "/api/v1/auth/password", json={"current_password": PASSWORD, "new_password": "lyhyt"}
        )
        assert api.status_code == 422
        assert api.json()["detail"] == "Use at least 10 characters."

    async def test_a_locked_login_says_how_long_in_the_browsers_language(
        self, client, db, clock, settings
    ):
        world = await build_world(db, clock.now())
        for _ in range(settings.login_max_failures_per_account + 1):
            locked = await client.post(
                "/login",
                data={"email": world.patient_user.email, "password": "not-the-password"},
                headers=FI,
            )
        assert locked.status_code == 429
        assert f"Odota noin {settings.login_lock_minutes} minuuttia" in locked.text
