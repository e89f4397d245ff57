"""Real outgoing channels for tests: an SMTP sink (aiosmtpd) and an SMS gateway that checks the HMAC."""

from __future__ import annotations

import email
import hashlib
import hmac
import json
import socket
import threading
import time as walltime
from collections.abc import Iterator
from datetime import datetime
from email import policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller

from app.config import Settings
from app.db import Database
from app.reminders.channels import channels_from_settings
from app.reminders.deliverer import Deliverer

SECRET = "gateway-shared-secret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SmtpSink:
    """aiosmtpd handler keeping every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.envelopes: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append(envelope)
        self.messages.append(email.message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"


async def deliver_while_listening(
    database: Database, settings: Settings, moment: datetime, controller: Controller
) -> None:
    """One delivery sweep at ``moment`` with channels from ``settings``, while the local SMTP
    server of ``controller`` listens; it stops again afterwards."""
    controller.start()
    try:
        worker = Deliverer(database, settings=settings, channels=channels_from_settings(settings))
        await worker.run(moment)
    finally:
        controller.stop()


class Gateway(BaseHTTPRequestHandler):
    """A clinic's SMS gateway: verifies timestamp and signature, can fail on purpose."""

    accepted: list[dict[str, Any]]
    rejected: list[str]
    fail_next: int

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        timestamp = self.headers.get("X-Tuki-Timestamp", "")
        expected = (
            "sha256="
            + hmac.new(SECRET.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
        )
        fresh = timestamp.isdigit() and abs(walltime.time() - int(timestamp)) < 300
        if not fresh or not hmac.compare_digest(self.headers.get("X-Tuki-Signature", ""), expected):
            type(self).rejected.append("bad signature")
            self._answer(401)
            return
        if type(self).fail_next > 0:
            type(self).fail_next -= 1
            self._answer(500)
            return
        payload = json.loads(body)
        payload["_idempotency_header"] = self.headers.get("Idempotency-Key")
        type(self).accepted.append(payload)
        self._answer(200)

    def _answer(self, status: int) -> None:
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def serve_gateway() -> Iterator[tuple[str, type[Gateway]]]:
    """A gateway on a free port for one test; the ``gateway`` fixture in conftest wraps it."""
    handler = type("TestGateway", (Gateway,), {"accepted": [], "rejected": [], "fail_next": 0})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/sms", handler
    finally:
        server.shutdown()
        server.server_close()
