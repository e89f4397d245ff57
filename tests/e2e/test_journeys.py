"""Journeys in a real browser, each from login to result, against the demo clinic."""

from __future__ import annotations

import re

from playwright.async_api import expect

from tests.e2e.helpers import login

NEW_PASSWORD = "lantern orchard violet 42"
THERAPIST = "therapist1@demo.tuki.test"
SITUATION = "Sunday evening alone at home, the week ahead felt heavy."


async def test_enroll_accept_exercise_draft_feedback_and_read_receipt(context_factory) -> None:  # type: ignore[no-untyped-def]
    # The admin enrolls a patient and copies the invitation link.
    admin = await (await context_factory()).new_page()
    await login(admin, "admin@demo.tuki.test")
    await admin.get_by_role("link", name="Enroll a patient").first.click()
    await admin.locator("#f-full_name").fill("Ilona Journey")
    await admin.locator("#f-email").fill("ilona.journey@example.org")
    await admin.locator("#f-timezone").fill("Europe/Helsinki")
    await admin.locator("#f-program").select_option("depression")
    therapist_option = admin.locator("#f-therapist_id option", has_text="Aino Virtanen")
    await admin.locator("#f-therapist_id").select_option(
        await therapist_option.get_attribute("value")
    )
    await admin.get_by_role("button", name="Enroll and create invitation").click()
    invitation = await admin.get_by_label("Invitation link").input_value()
    assert "/invite/" in invitation

    # The patient accepts it in their own browser and lands on their program.
    patient_context = await context_factory()
    patient = await patient_context.new_page()
    await patient.goto(invitation)
    await patient.locator("#f-password").fill(NEW_PASSWORD)
    await patient.locator("#f-password_confirm").fill(NEW_PASSWORD)
    await patient.get_by_role("button", name="Set password and continue").click()
    await patient.wait_for_url(re.compile(r"/patient"))
    assert "Ilona" in await patient.get_by_role("heading", level=1).inner_text()

    # Reads the first module up to its first exercise.
    await patient.get_by_role("link", name="Start module 1").click()
    exercise = patient.locator("form.exercise-form").first
    while not await exercise.count():
        await patient.get_by_role("link", name=re.compile("^Next")).first.click()
    situation = exercise.locator("textarea").first
    await situation.fill(SITUATION)
    await exercise.locator(".autosave-status").filter(has_text="Saved at").wait_for()
    await patient.close()

    # Comes back on another device (no local copy): the draft was saved on the server.
    patient = await (await context_factory()).new_page()
    await login(patient, "ilona.journey@example.org", NEW_PASSWORD)
    await patient.get_by_role("link", name=re.compile("Continue where you left off")).click()
    exercise = patient.locator("form.exercise-form").first
    assert await exercise.locator("textarea").first.input_value() == SITUATION
    for box in (await exercise.locator("textarea").all())[1:]:
        await box.fill("A few words.")
    await exercise.get_by_role("button", name="Submit", exact=True).click()
    await patient.get_by_text("Thank you, that is submitted.").wait_for()

    # The therapist finds it in the work list and answers with a snippet.
    therapist = await (await context_factory()).new_page()
    await login(therapist, THERAPIST)
    feedback_link = therapist.get_by_role(
        "link", name=re.compile(r"Write feedback to Ilona Journey")
    )
    await feedback_link.click()
    await therapist.locator("details.snippet-picker summary").click()
    await therapist.get_by_role("button", name=re.compile("^Insert")).first.click()
    # The composer is enhanced: the snippet arrives in place, without a page load.
    body = therapist.locator("#f-body")
    await expect(body).not_to_have_value(re.compile(r"^\s*$"))
    await body.fill((await body.input_value()) + "\nYour circle shows the pattern clearly.")
    await therapist.get_by_role("button", name="Send", exact=True).click()
    await therapist.get_by_text("Not read yet").first.wait_for()

    # The patient sees the reply; the therapist then sees that it was read.
    await patient.goto("/patient/messages")
    await patient.get_by_text("Your circle shows the pattern clearly.").wait_for()
    await therapist.reload()
    receipt = therapist.locator(".receipt").last
    assert re.match(r"\W*Read ", await receipt.inner_text()), await receipt.inner_text()


async def test_patient_changes_reminder_preferences(page) -> None:  # type: ignore[no-untyped-def]
    await login(page, "gad@demo.tuki.test")
    await page.get_by_role("link", name="Reminders").first.click()
    email = page.locator('input[name="channels"][value="email"]')
    was = await email.is_checked()
    await email.set_checked(not was)
    await page.get_by_role("button", name="Save my choices").click()
    await page.wait_for_load_state()
    await page.goto("/patient/reminders")
    assert await page.locator('input[name="channels"][value="email"]').is_checked() is not was


async def test_admin_opens_the_adherence_report_with_charts(page) -> None:  # type: ignore[no-untyped-def]
    await login(page, "admin@demo.tuki.test")
    await page.get_by_role("link", name="Reports").click()
    await page.wait_for_url(re.compile(r"/admin/reports"))
    names = await page.eval_on_selector_all(
        "main svg[role='img']",
        """charts => charts.map(chart => (chart.getAttribute('aria-labelledby') || '')
            .split(' ').map(id => document.getElementById(id)?.textContent || '').join(' ').trim())""",
    )
    assert len(names) >= 2, names
    assert all(names), names


async def test_self_harm_answer_shows_crisis_contacts_and_alerts_the_therapist(
    context_factory,
) -> None:  # type: ignore[no-untyped-def]
    therapist = await (await context_factory()).new_page()
    await login(therapist, THERAPIST)
    alerts_for_liisa = therapist.locator("#alerts li.alert:not(.alert-done)", has_text="Liisa")
    before = await alerts_for_liisa.count()

    patient = await (await context_factory()).new_page()
    await login(patient, "depression@demo.tuki.test")
    await patient.goto("/patient/questionnaires/phq9")
    items = patient.locator("main fieldset")
    count = await items.count()
    assert count == 9
    for index in range(count):
        options = items.nth(index).locator("input[type=radio]")
        await options.nth(2 if index == count - 1 else 0).check()
    await patient.locator("main form button[type=submit]").last.click()
    await patient.get_by_role("heading", name="Thank you for telling us").wait_for()
    main = await patient.locator("main").inner_text()
    assert "112" in main
    assert "09 2525 0111" in main

    await therapist.reload()
    assert await alerts_for_liisa.count() == before + 1
