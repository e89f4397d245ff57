"""Catalogue markers usable anywhere, even below the web layer (no imports from the app)."""

from __future__ import annotations


class Deferred(str):
    """English text that keeps its catalogue entry and values: the JSON API and logs see the
    English, and ``translate`` says it again in the reader's language on a page."""

    msgid: str
    params: dict[str, object]

    def __new__(cls, msgid: str, params: dict[str, object]) -> Deferred:
        text = super().__new__(cls, msgid % params)
        text.msgid = msgid
        text.params = params
        return text


def N_(message: str, /, **params: object) -> str:
    """Mark a string for the catalogue where it is defined; translate it where it is shown.

    With values (``N_("Use at least %(n)s characters.", n=10)``) the English is filled in
    now and the entry travels with it, for messages built by services.
    """
    return Deferred(message, params) if params else message
