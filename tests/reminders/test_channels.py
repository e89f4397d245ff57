"""Real channels: a local SMTP server (aiosmtpd), a local HTTP gateway that checks the HMAC, the outbox."""

from __future__ import annotations

import email
from datetime import timedelta
from email import policy

import pytest
from aiosmtpd.controller import Controller
from pydantic import SecretStr

from app.reminders.channels import (
    Channels,
    DeliveryError,
    FileOutbox,
    Outgoing,
    WebhookSender,
    channels_from_settings,
)
from app.reminders.deliverer import Deliverer
from tests.factories import build_world
from tests.reminders.helpers import plan, reminders, set_preferences
from tests.sinks import SECRET, SmtpSink, deliver_while_listening, free_port

DAY = timedelta(days=1)


async def _world_with_nudge(db, database, settings, clock, **prefs):
    world = await build_world(db, clock.now())
    await set_preferences(db, world.enrollment, **prefs)
    moment = clock.now() + 3 * DAY
    await plan(database, settings, moment)
    return world, moment


class TestSmtp:
    async def test_delivered_to_a_real_smtp_server_after_it_was_down(
        self, db, database, settings, clock
    ):
        port = free_port()
        smtp_settings = settings.model_copy(
            update={
                "email_backend": "smtp",
                "smtp_host": "127.0.0.1",
                "smtp_port": port,
                "smtp_timeout_seconds": 5.0,
            }
        )
        world, moment = await _world_with_nudge(db, database, smtp_settings, clock)
        worker = Deliverer(
            database, settings=smtp_settings, channels=channels_from_settings(smtp_settings)
        )
        # Nobody listens yet: the attempt fails and the row waits for a retry.
        await worker.run(moment)
        emails = await reminders(database, world.enrollment, channel="email")
        assert emails and {(r.status, r.attempts) for r in emails} == {("pending", 1)}
        assert all(r.last_error.startswith("smtp: ") for r in emails)

        sink = SmtpSink()
        controller = Controller(sink, hostname="127.0.0.1", port=port)
        controller.start()
        try:
            await worker.run(moment + timedelta(minutes=1))
        finally:
            controller.stop()
        emails = await reminders(database, world.enrollment, channel="email")
        assert {(r.status, r.attempts) for r in emails} == {("sent", 2)}
        to_patient = [m for m in sink.messages if m["To"] == world.patient_user.email]
        assert len(to_patient) == len(emails)
        message = to_patient[0]
        assert message["Subject"] == "A note from Tuki"
        assert message["X-Tuki-Idempotency-Key"] in {r.dedupe_key for r in emails}
        assert message["Message-ID"].endswith("@tuki>")
        body = message.get_content()
        assert "Something new is waiting for you in Tuki." in body
        assert "http://test/r/" in body

    async def test_reminders_in_the_recipients_language_else_the_clinics(
        self, db, database, settings, clock
    ):
        """In a Finnish clinic, a patient who chose no language gets Finnish and one who chose
        English gets English; a patient of an English clinic gets English."""
        port = free_port()
        smtp_settings = settings.model_copy(
            update={"email_backend": "smtp", "smtp_host": "127.0.0.1", "smtp_port": port}
        )
        world = await build_world(db, clock.now())
        world.clinic.language = "fi"
        world.patient_user.language = None
        world.other_patient_user.language = "en"
        await db.commit()
        await set_preferences(db, world.enrollment)
        moment = clock.now() + 3 * DAY
        await plan(database, smtp_settings, moment)
        sink = SmtpSink()
        controller = Controller(sink, hostname="127.0.0.1", port=port)
        await deliver_while_listening(database, smtp_settings, moment, controller)
        finnish = [m for m in sink.messages if m["To"] == world.patient_user.email]
        chose_english = [m for m in sink.messages if m["To"] == world.other_patient_user.email]
        known = {world.patient_user.email, world.other_patient_user.email}
        english_clinic = [m for m in sink.messages if m["To"] not in known]
        assert finnish and chose_english and english_clinic
        for message in finnish:
            assert message["Subject"] == "Muistutus Tukista"
            body = message.get_content().replace("\r\n", "\n")
            assert body.startswith("Hei,\n\nTukissa odottaa sinulle jotain")
            assert "Avaa Tuki: http://test/r/" in body
            assert "Muistutukset-sivulla" in body
            assert "Tuki reminds you" not in body
        for message in chose_english + english_clinic:
            assert message["Subject"] == "A note from Tuki"
            assert "Something new is waiting for you in Tuki." in message.get_content()


class TestWebhook:
    async def test_signed_delivery_retried_after_a_500(
        self, db, database, settings, clock, gateway
    ):
        url, handler = gateway
        sms_settings = settings.model_copy(
            update={"reminder_webhook_url": url, "reminder_webhook_secret": SecretStr(SECRET)}
        )
        world = await build_world(db, clock.now())
        world.patient.phone = "+358 40 111 2222"
        db.add(world.patient)
        await set_preferences(db, world.enrollment, email=False, sms=True)
        moment = clock.now() + 3 * DAY
        await plan(database, sms_settings, moment)
        channels = channels_from_settings(sms_settings)
        assert isinstance(channels.sms, WebhookSender)
        worker = Deliverer(database, settings=sms_settings, channels=channels)
        planned = await reminders(database, world.enrollment, channel="sms")
        assert planned
        handler.fail_next = len(planned)  # the gateway answers 500 to the first round

        await worker.run(moment)
        sms = await reminders(database, world.enrollment, channel="sms")
        assert {(r.status, r.last_error) for r in sms} == {("pending", "webhook: HTTP 500")}
        await worker.run(moment + timedelta(minutes=1))
        sms = await reminders(database, world.enrollment, channel="sms")
        assert {(r.status, r.attempts) for r in sms} == {("sent", 2)}

        mine = [p for p in handler.accepted if p["to"] == "+358 40 111 2222"]
        assert len(mine) == len(sms)
        assert {p["idempotency_key"] for p in mine} == {r.dedupe_key for r in sms}
        assert all(p["_idempotency_header"] == p["idempotency_key"] for p in mine)
        assert mine[0]["channel"] == "sms"
        assert mine[0]["text"].startswith(
            "Something new is waiting for you in Tuki. http://test/r/"
        )
        assert handler.rejected == []

    async def test_the_gateway_refuses_a_wrong_signature(self, gateway):
        url, handler = gateway
        sender = WebhookSender(url, "not-the-secret")
        with pytest.raises(DeliveryError, match="HTTP 401"):
            await sender.send(Outgoing("k:1", "sms", "+358401234567", "s", "t"))
        assert handler.rejected == ["bad signature"]

    async def test_an_unreachable_gateway_is_a_delivery_error(self):
        sender = WebhookSender(f"http://127.0.0.1:{free_port()}/sms", SECRET, timeout=2.0)
        with pytest.raises(DeliveryError, match="webhook: ConnectError"):
            await sender.send(Outgoing("k:1", "sms", "+358401234567", "s", "t"))


class TestFileOutbox:
    async def test_demo_outbox_writes_one_file_per_message_even_when_retried(
        self, db, database, settings, clock, tmp_path
    ):
        demo = settings.model_copy(update={"demo_outbox_dir": tmp_path / "outbox"})
        channels = channels_from_settings(demo)
        assert isinstance(channels.email, FileOutbox)
        world, moment = await _world_with_nudge(db, database, demo, clock)
        await Deliverer(database, settings=demo, channels=channels).run(moment)
        rows = await reminders(database, world.enrollment, channel="email")
        outbox = channels.email
        for row in rows:
            path = outbox.path_for(row.dedupe_key)
            assert path.exists()
            message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
            assert message["To"] == world.patient_user.email
        before = sorted(p.name for p in (tmp_path / "outbox").iterdir())
        await outbox.send(Outgoing(rows[0].dedupe_key, "email", "x@example.org", "s", "again"))
        assert sorted(p.name for p in (tmp_path / "outbox").iterdir()) == before

    def test_channels_follow_settings(self, settings):
        assert Channels is not None
        assert channels_from_settings(settings).sms is None
