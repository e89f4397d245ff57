"""Schemathesis against the running server, once per role and once without a session.

Every check runs (``--checks all``), with positive and negative data (``--mode all``)
through all four phases: schema examples, coverage, fuzzing and stateful sequences. The run
fails on any finding: a 5xx, an undocumented status, a body or header that breaks its
schema, invalid input that is accepted, valid input that is refused, a route that ignores
its authentication, or a 405 without the right ``Allow``. Per-operation exceptions live in
``schemathesis.toml`` beside this file, each with its reason.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from app.demo import DEMO_PASSWORD
from tests.fuzz.conftest import CASES_KEY, LiveServer

HERE = Path(__file__).resolve().parent
CONFIG = HERE / "schemathesis.toml"
# Examples per operation in the fuzzing phase (and stateful sequences); a few minutes in all.
MAX_EXAMPLES = int(os.environ.get("TUKI_FUZZ_EXAMPLES", "5"))
SESSION_COOKIE = "tuki_session"  # plain-HTTP name; the server runs without TLS here
# With a session, leave out what would end that session part-way through the run and turn
# every later request into a 401: logging out, changing the password, logging in again (it
# ends the caller's current session first) and the two-factor steps (they replace the
# session token). The anonymous run fuzzes them all; tests/accounts covers their effects.
SESSION_ENDING = "^/api/v1/auth/(login|logout|password|2fa.*)$"

# Patients first: the admin's run may pause or close the enrollments the others work in.
ROLES = [
    ("patient", "depression@demo.tuki.test"),
    ("therapist", "therapist1@demo.tuki.test"),
    ("admin", "admin@demo.tuki.test"),
    ("anonymous", None),
]


def _login(base_url: str, email: str) -> tuple[str, str]:
    """A real password login: the session token and its CSRF token."""
    response = httpx.post(
        f"{base_url}/api/v1/auth/login",
        json={"email": email, "password": DEMO_PASSWORD},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "ok", "staff two-factor must be off for the fuzz server"
    return response.cookies[SESSION_COOKIE], response.json()["csrf_token"]


def _config_for(workdir: Path, role: str, token: str | None) -> Path:
    """The shared settings plus this role's session, given to the scheme the API declares.

    Through the scheme (not a raw Cookie header) Schemathesis knows the credential: it can
    leave it out or spoil it to test that each route really refuses without it.
    """
    text = CONFIG.read_text()
    if token is not None:
        text += f'\n[auth.openapi.session]\napi_key = "{token}"\n'
    path = workdir / f"{role}.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(("role", "email"), ROLES, ids=[role for role, _ in ROLES])
def test_schemathesis_finds_nothing(
    fuzz_server: LiveServer, role: str, email: str | None, request: pytest.FixtureRequest
) -> None:
    if email is not None:
        token, csrf = _login(fuzz_server.base_url, email)
        extra = ["-H", f"X-CSRF-Token: {csrf}", "--exclude-path-regex", SESSION_ENDING]
    else:
        # Without a session: the login, two-factor, logout and invitation routes. Every
        # guarded route is already called without (and with spoiled) credentials by the
        # ignored_auth check of the runs above.
        token, extra = None, ["--include-tag", "auth"]
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(_config_for(fuzz_server.workdir, role, token)),
        "--no-color",
        "run",
        f"{fuzz_server.base_url}/openapi.json",
        "--checks",
        "all",
        "--mode",
        "all",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--generation-deterministic",  # the same cases on every run, so a failure reproduces
        "--workers",
        "2",
        *extra,
    ]
    result = subprocess.run(  # noqa: S603
        command, cwd=fuzz_server.workdir, capture_output=True, text=True, timeout=600
    )
    output = result.stdout + result.stderr
    generated = re.search(r"(\d+) generated", output)
    operations = re.search(r"Tested: (\d+)", output)
    summary = (
        f"{operations.group(1) if operations else '?'} operations, "
        f"{generated.group(1) if generated else '?'} generated cases"
    )
    request.config.stash.setdefault(CASES_KEY, {})[role] = summary
    assert result.returncode == 0, f"schemathesis as {role} ({summary}):\n{output[-20000:]}"
    assert generated is not None and int(generated.group(1)) > 0, output[-5000:]
