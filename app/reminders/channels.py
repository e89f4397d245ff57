"""Outgoing channels: e-mail over SMTP or to a file outbox, and an HMAC-signed webhook for SMS.

Every message carries the reminder's dedupe key, so a retry after a crash is recognisable
downstream (Message-ID for e-mail, ``idempotency_key`` for the gateway). Errors are
reported as :class:`DeliveryError` with a short reason that never includes the message.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import smtplib
import ssl
import time
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path
from typing import Protocol

import httpx

from app.config import Settings


@dataclass(frozen=True)
class Outgoing:
    dedupe_key: str
    channel: str
    to: str
    subject: str
    text: str


class DeliveryError(Exception):
    """A send that did not go through; the message is a short reason without personal data."""


class Sender(Protocol):
    async def send(self, message: Outgoing) -> None: ...


def message_id(dedupe_key: str) -> str:
    return f"<{hashlib.sha256(dedupe_key.encode()).hexdigest()[:32]}@tuki>"


def build_email(message: Outgoing, sender: str) -> EmailMessage:
    email = EmailMessage()
    email["From"] = sender
    email["To"] = message.to
    email["Subject"] = message.subject
    email["Date"] = formatdate(localtime=False, usegmt=True)
    email["Message-ID"] = message_id(message.dedupe_key)
    email["X-Tuki-Idempotency-Key"] = message.dedupe_key
    email.set_content(message.text)
    return email


class SmtpSender:
    """Standard-library smtplib, run in a thread so the event loop never blocks."""

    def __init__(self, settings: Settings) -> None:
        self.host = settings.smtp_host
        self.port = settings.smtp_port
        self.user = settings.smtp_user
        self.password = (
            settings.smtp_password.get_secret_value() if settings.smtp_password else None
        )
        self.starttls = settings.smtp_starttls
        self.timeout = settings.smtp_timeout_seconds
        self.sender = settings.smtp_from

    def _send(self, email: EmailMessage) -> None:
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            if self.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if self.user:
                smtp.login(self.user, self.password or "")
            smtp.send_message(email)

    async def send(self, message: Outgoing) -> None:
        try:
            await asyncio.to_thread(self._send, build_email(message, self.sender))
        except (smtplib.SMTPException, OSError) as exc:
            code = getattr(exc, "smtp_code", None)
            raise DeliveryError(f"smtp: {type(exc).__name__}{f' {code}' if code else ''}") from exc


class FileOutbox:
    """Demo and development: each e-mail becomes an .eml file named by its dedupe key."""

    def __init__(self, directory: Path, sender: str) -> None:
        self.directory = directory
        self.sender = sender

    def path_for(self, dedupe_key: str) -> Path:
        return self.directory / f"{hashlib.sha256(dedupe_key.encode()).hexdigest()[:24]}.eml"

    def _write(self, message: Outgoing) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        target = self.path_for(message.dedupe_key)
        partial = target.with_suffix(".tmp")
        partial.write_bytes(bytes(build_email(message, self.sender)))
        partial.replace(target)  # a retry overwrites the same file: sent once

    async def send(self, message: Outgoing) -> None:
        try:
            await asyncio.to_thread(self._write, message)
        except OSError as exc:
            raise DeliveryError(f"outbox: {type(exc).__name__}") from exc


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>`` of HMAC-SHA256 over ``"<timestamp>.<body>"``, as the gateway checks it."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


class WebhookSender:
    """POSTs JSON to the clinic's SMS gateway, signed with a timestamp against replay."""

    def __init__(
        self,
        url: str,
        secret: str | None,
        *,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = url
        self.secret = secret
        self.timeout = timeout
        self.transport = transport

    async def send(self, message: Outgoing) -> None:
        timestamp = str(int(time.time()))
        body = json.dumps(
            {
                "idempotency_key": message.dedupe_key,
                "channel": message.channel,
                "to": message.to,
                "text": message.text,
            },
            separators=(",", ":"),
            ensure_ascii=False,
        ).encode()
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": message.dedupe_key,
            "X-Tuki-Timestamp": timestamp,
        }
        if self.secret:
            headers["X-Tuki-Signature"] = signature(self.secret, timestamp, body)
        try:
            async with httpx.AsyncClient(timeout=self.timeout, transport=self.transport) as client:
                response = await client.post(self.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise DeliveryError(f"webhook: {type(exc).__name__}") from exc
        if not response.is_success:
            raise DeliveryError(f"webhook: HTTP {response.status_code}")


@dataclass
class Channels:
    """The senders a deliverer uses; in-app notifications need none (they are database rows)."""

    email: Sender
    sms: Sender | None = None


def channels_from_settings(settings: Settings) -> Channels:
    email: Sender
    if settings.mail_backend == "smtp":
        email = SmtpSender(settings)
    else:
        email = FileOutbox(settings.demo_outbox_dir, settings.smtp_from)
    sms: Sender | None = None
    if settings.reminder_webhook_url:
        secret = settings.reminder_webhook_secret
        sms = WebhookSender(
            settings.reminder_webhook_url,
            secret.get_secret_value() if secret else None,
            timeout=settings.reminder_webhook_timeout_seconds,
        )
    return Channels(email=email, sms=sms)
