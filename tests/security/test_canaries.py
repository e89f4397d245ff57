"""Canary strings written by a patient never leak into logs or outgoing e-mail files."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from tests.factories import build_world, login
from tests.programs.helpers import path_of, valid_data

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
