"""The journeys' forms without JavaScript, and a double-clicked submit button."""

from __future__ import annotations

import re

from tests.e2e.helpers import login


async def test_exercise_and_reminders_work_with_javascript_off(context_factory) -> None:  # type: ignore[no-untyped-def]
    page = await (await context_factory(java_script_enabled=False)).new_page()
    await login(page, "bulimia@demo.tuki.test")
    await page.goto("/patient/modules")
    first = await page.eval_on_selector_all(
        "main a[href^='/patient/modules/']", "links => links.map(a => a.pathname)"
    )
    await page.goto(first[0])
    exercise = page.locator("form.exercise-form").first
    while not await exercise.count():
        await page.get_by_role("link", name=re.compile("^Next")).first.click()
    for box in await exercise.locator("textarea").all():
        await box.fill("Written with scripts turned off.")
    await exercise.get_by_role("button", name=re.compile("^Submit")).click()
    await page.get_by_text("Thank you, that is submitted.").wait_for()
    assert await page.locator("form.exercise-form textarea").first.input_value() == (
        "Written with scripts turned off."
    )

    await page.goto("/patient/reminders")
    email = page.locator('input[name="channels"][value="email"]')
    was = await email.is_checked()
    await email.set_checked(not was)
    await page.get_by_role("button", name="Save my choices").click()
    await page.goto("/patient/reminders")
    assert await page.locator('input[name="channels"][value="email"]').is_checked() is not was


async def test_double_clicked_send_creates_one_message(page) -> None:  # type: ignore[no-untyped-def]
    """Chromium itself drops a second click during navigation, so the page posts the same form
    twice at once, as a browser that does not would (or a click repeated on a slow line)."""
    await login(page, "panic@demo.tuki.test")
    await page.goto("/patient/messages")
    text = "Sent with an impatient double click."
    await page.locator("#f-body").fill(text)
    statuses = await page.eval_on_selector(
        "#composer",
        """form => Promise.all([1, 2].map(() => fetch(form.action, {
            method: 'POST', body: new URLSearchParams(new FormData(form)), redirect: 'manual',
        }).then(r => r.status)))""",
    )
    assert all(status < 400 for status in statuses), statuses
    await page.goto("/patient/messages")
    assert await page.locator("main").get_by_text(text, exact=True).count() == 1


async def test_typing_survives_an_ended_session_and_comes_back_after_login(context_factory) -> None:  # type: ignore[no-untyped-def]
    context = await context_factory()
    page = await context.new_page()
    await login(page, "ocd@demo.tuki.test")
    await page.goto("/patient/modules")
    first = await page.eval_on_selector_all(
        "main a[href^='/patient/modules/']", "links => links.map(a => a.pathname)"
    )
    await page.goto(first[0])
    exercise = page.locator("form.exercise-form").first
    while not await exercise.count():
        await page.get_by_role("link", name=re.compile("^Next")).first.click()
    module_path = page.url.split("?")[0]

    await context.clear_cookies()
    typed = "Typed after the session had quietly ended."
    await exercise.locator("textarea, input[type=text]").first.fill(typed)
    await exercise.locator(".autosave-status").filter(has_text="kept on this device").wait_for()

    await page.goto(module_path)
    assert "/login" in page.url
    await page.locator("#f-email").fill("ocd@demo.tuki.test")
    await page.locator("#f-password").fill("tuki-demo-2026")
    await page.get_by_role("button", name="Log in").click()
    await page.wait_for_url(re.compile(re.escape(module_path)))
    restored = page.locator("form.exercise-form").first
    assert await restored.locator("textarea, input[type=text]").first.input_value() == typed
    await (
        restored.locator(".autosave-status")
        .filter(has_text=re.compile("brought back what you typed|Saved at"))
        .wait_for()
    )
