"""Stable pseudonyms for research exports: HMAC-SHA256 of an id under the export key.

The same key always gives the same pseudonym, so exports taken at different times can be
joined; a different key gives unrelated pseudonyms, and without the key nobody can go
from a pseudonym back to the enrollment (or test a guessed id against it).
"""

from __future__ import annotations

import hashlib
import hmac

LENGTH = 20  # hex characters: 80 bits, collision-free for any clinic's lifetime


class Pseudonymiser:
    def __init__(self, key: str) -> None:
        if not key:
            raise ValueError("an export pseudonym key is required")
        self._key = key.encode("utf-8")

    def __call__(self, kind: str, value: int) -> str:
        digest = hmac.new(self._key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()
        return digest[:LENGTH]

    def enrollment(self, enrollment_id: int) -> str:
        return self("enrollment", enrollment_id)

    def therapist(self, user_id: int) -> str:
        return self("therapist", user_id)
