"""Crisis contacts are one step away on every page a patient can open (a clinical-safety control)."""

from __future__ import annotations

import re

from app.accounts.policy import Access, all_api_routes, guard_of
from tests.accounts.test_policy_matrix import fill_path
from tests.factories import build_world, login

PATIENT_ACCESS = {Access.PATIENT, Access.AUTHENTICATED}


def patient_pages(app) -> list[str]:  # type: ignore[no-untyped-def]
    """Every HTML GET route a logged-in patient may open, straight from the app's route table."""
    pages = []
    for info in all_api_routes(app):
        guard = guard_of(info.route)
        if guard is None or guard.access not in PATIENT_ACCESS or "GET" not in info.methods:
            continue
        if info.path.startswith("/api/") or info.path in ("/healthz", "/readyz", "/metrics"):
            continue
        pages.append(info.path)
    return sorted(pages)


async def test_every_patient_page_shows_the_crisis_contacts(app, client, db, clock):
    world = await build_world(db, clock.now())
    await login(client, world.patient_user.email)
    templates = patient_pages(app)
    assert "/patient" in templates and "/patient/messages" in templates and len(templates) >= 8
    checked = []
    for template in templates:
        url = fill_path(template, world)
        # A page with nothing to show yet redirects to its neighbour, which is checked too.
        response = await client.get(url, follow_redirects=True)
        # Sample ids that do not exist here answer 404; anything else must be a working page.
        assert response.status_code in (200, 404), f"{url}: {response.status_code}"
        if response.status_code == 404 or "text/html" not in response.headers["content-type"]:
            # Downloads (the patient's own export) and missing sample rows carry no page.
            continue
        assert re.search(r'href="tel:112"', response.text), f"{url}: no emergency number"
        assert 'href="tel:0800100100"' in response.text, f"{url}: no crisis line"
        checked.append(template)
    assert len(checked) >= 8, checked
