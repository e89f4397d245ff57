"""TOTP second factor: enrolment material and single-use verification."""

from __future__ import annotations

from datetime import datetime

import pyotp
import segno

ISSUER = "Tuki"


def new_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(secret: str, email: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=email, issuer_name=ISSUER)


def qr_svg_data_uri(uri: str) -> str:
    """A QR code as an inline data URI so the page needs no external image service."""
    return segno.make(uri, error="m").svg_data_uri(scale=5, border=2)


def matching_timecode(secret: str, code: str, at: datetime) -> int | None:
    """The time step the code belongs to (±1 step of clock drift), or None if it is wrong.

    pyotp itself is stateless; the caller makes codes single-use by storing the step.
    """
    code = code.strip().replace(" ", "")
    if not code.isdigit() or len(code) != 6:
        return None
    try:
        return pyotp.TOTP(secret).verify_and_get_timecode(code, for_time=at, valid_window=1)
    except pyotp.OTPVerificationError:
        return None


def code_at(secret: str, at: datetime) -> str:
    """The code an authenticator app would show at ``at`` (used by tests and the demo)."""
    return pyotp.TOTP(secret).at(at)
