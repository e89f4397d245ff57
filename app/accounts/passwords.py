"""Password hashing (Argon2id via pwdlib) and the password policy."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from starlette.concurrency import run_in_threadpool

from app.common.messages import N_

# OWASP's Argon2id baseline is m=19 MiB, t=2, p=1; we go above it on memory.
ARGON2_TIME_COST = 3
ARGON2_MEMORY_KIB = 65536
ARGON2_PARALLELISM = 4

_hasher = PasswordHash(
    (
        Argon2Hasher(
            time_cost=ARGON2_TIME_COST,
            memory_cost=ARGON2_MEMORY_KIB,
            parallelism=ARGON2_PARALLELISM,
        ),
    )
)
# Verified against when the e-mail is unknown, so both paths cost the same time.
_DUMMY_HASH = _hasher.hash("tuki-timing-equaliser")

MAX_PASSWORD_LENGTH = 128


async def hash_password(password: str) -> str:
    """Argon2 costs tens of milliseconds of CPU; keep it off the event loop."""
    return await run_in_threadpool(_hasher.hash, password)


async def verify_password(password: str, password_hash: str | None) -> tuple[bool, str | None]:
    """Return (ok, new_hash_if_parameters_changed); always spends one Argon2 verification."""
    if password_hash is None:
        await run_in_threadpool(_hasher.verify, password, _DUMMY_HASH)
        return False, None
    return await run_in_threadpool(_hasher.verify_and_update, password, password_hash)


@lru_cache
def _common_passwords() -> frozenset[str]:
    path = Path(__file__).with_name("common_passwords.txt")
    return frozenset(line.strip().lower() for line in path.read_text().splitlines() if line.strip())


def password_problem(
    password: str, *, min_length: int, email: str = "", name: str = ""
) -> str | None:
    """Explain why a password is refused, or None. Length and blocklist, per NIST 800-63B."""
    if len(password) < min_length:
        return N_("Use at least %(count)s characters.", count=min_length)
    if len(password) > MAX_PASSWORD_LENGTH:
        return N_("Use at most %(count)s characters.", count=MAX_PASSWORD_LENGTH)
    lowered = password.lower()
    if lowered in _common_passwords() or len(set(lowered)) < 4:
        return "This password is too common or too easy to guess; choose another."
    personal = [email.split("@", 1)[0].lower()] + [p.lower() for p in name.split() if len(p) >= 3]
    if any(part and len(part) >= 3 and part in lowered for part in personal):
        return "Do not use your name or e-mail address in the password."
    return None
