"""Canary strings written in therapy never leak into logs, e-mails, webhook bodies or metrics."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from pathlib import Path

from aiosmtpd.controller import Controller
from pydantic import SecretStr

from tests.factories import build_world, login
from tests.programs.helpers import path_of, valid_data
from tests.reminders.helpers import plan, set_preferences
from tests.sinks import SECRET, SmtpSink, deliver_while_listening, free_port

API = "/api/v1"
SAMPLE_TEXT = "I noticed my shoulders drop when I slowed down."


def files_text(directory: Path) -> str:
    if not directory.exists():
        return ""
    return "".join(
        p.read_text(errors="replace") for p in sorted(directory.rglob("*")) if p.is_file()
    )


async def test_patient_text_stays_out_of_logs_and_outbox(
    client, client_factory, db, clock, settings, caplog
):
    canary_message = "CANARY-MSG-7f3a9c1e"
    canary_answer = "CANARY-ANS-2b8d4e6f"
    world = await build_world(db, clock.now())
    outbox_before = files_text(settings.demo_outbox_dir)
    with caplog.at_level(logging.DEBUG):
        await login(client, world.patient_user.email)
        sent = await client.post(
            f"{API}/enrollments/{world.enrollment.id}/messages",
            json={"body": f"Something private: {canary_message}"},
        )
        assert sent.status_code == 201, sent.text
        first = (await path_of(client, world.enrollment.id))["modules"][0]["ref"]
        opened = await client.get(f"{API}/enrollments/{world.enrollment.id}/modules/{first}")
        module = opened.json()
        exercise = module["exercises"][0]
        data = valid_data(exercise["fields"])
        encoded = json.dumps(data)
        assert SAMPLE_TEXT in encoded
        data = json.loads(encoded.replace(SAMPLE_TEXT, f"My answer: {canary_answer}"))
        url = f"{API}/enrollments/{world.enrollment.id}/exercises/{module['ref']}/{exercise['id']}"
        saved = await client.put(url, json={"data": data, "version": 0})
        assert saved.status_code == 200, saved.text
        submitted = await client.post(
            f"{url}/submit", json={"version": saved.json()["response"]["version"]}
        )
        assert submitted.status_code == 200, submitted.text
        therapist = client_factory()
        await login(therapist, world.therapist.email)
        thread = await therapist.get(f"{API}/enrollments/{world.enrollment.id}/messages")
        assert canary_message in thread.text
        for path in ("/therapist", f"/therapist/patients/{world.enrollment.id}"):
            assert (await therapist.get(path)).status_code == 200
    logged = "\n".join(
        [r.getMessage() for r in caplog.records] + [str(r.args) for r in caplog.records]
    )
    assert caplog.records, "nothing was captured, so the check would prove nothing"
    outbox = files_text(settings.demo_outbox_dir)[len(outbox_before) :]
    for canary in (canary_message, canary_answer):
        assert canary not in logged
        assert canary not in outbox


async def test_patient_text_stays_out_of_emails_webhooks_and_metrics(
    app, client, client_factory, db, database, clock, settings, gateway
):
    """Reminders about a message go out by real SMTP and a real signed webhook; neither they nor
    the metrics scrape may carry a word of what was written."""
    canary_from_patient = "CANARY-PAT-91c0d2aa"
    canary_from_therapist = "CANARY-THER-5e1f7b33"
    url, handler = gateway
    port = free_port()
    sink = SmtpSink()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    channel_settings = settings.model_copy(
        update={
            "email_backend": "smtp",
            "smtp_host": "127.0.0.1",
            "smtp_port": port,
            "reminder_webhook_url": url,
            "reminder_webhook_secret": SecretStr(SECRET),
            "metrics_token": SecretStr("operator-token-canary-check"),
        }
    )
    app.state.settings = channel_settings
    world = await build_world(db, clock.now())
    world.patient.phone = "+358 40 555 0101"
    db.add(world.patient)
    await set_preferences(db, world.enrollment, email=True, sms=True)

    await login(client, world.patient_user.email)
    sent = await client.post(
        f"{API}/enrollments/{world.enrollment.id}/messages",
        json={"body": f"Hard week. {canary_from_patient}"},
    )
    assert sent.status_code == 201, sent.text
    therapist = client_factory()
    await login(therapist, world.therapist.email)
    reply = await therapist.post(
        f"{API}/enrollments/{world.enrollment.id}/messages",
        json={"body": f"Thank you for telling me. {canary_from_therapist}"},
    )
    assert reply.status_code == 201, reply.text

    moment = clock.now() + timedelta(days=3)
    await plan(database, channel_settings, moment)
    await deliver_while_listening(database, channel_settings, moment, controller)
    scrape = await client_factory().get(
        "/metrics", headers={"Authorization": "Bearer operator-token-canary-check"}
    )
    assert scrape.status_code == 200, scrape.text

    emails = [m.as_string() for m in sink.messages]
    webhooks = [json.dumps(p) for p in handler.accepted]
    # The reminders really went out through both channels, so the absence below means something.
    assert emails and webhooks
    assert "tuki_http_requests_total" in scrape.text
    for canary in (canary_from_patient, canary_from_therapist):
        assert all(canary not in text for text in emails)
        assert all(canary not in text for text in webhooks)
        assert canary not in scrape.text
