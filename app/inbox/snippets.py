"""Snippets: short gestures a therapist reuses, with placeholders filled in safely.

Placeholders are replaced by a single regular-expression pass over a fixed set of names.
Nothing is ever evaluated: no ``str.format``, no attribute or index lookup, and a value
that itself looks like a placeholder is not expanded again. Saving a snippet with an
unknown placeholder is refused (422), so a typo is caught when it is written rather than
when a patient would see ``{frist_name}``; any unknown one met at render time stays as typed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from app.accounts.models import User
from app.accounts.policy import Principal
from app.audit import service as audit
from app.audit.service import Actor
from app.clinics.schemas import PersonRef
from app.common.errors import Invalid, NotFound
from app.inbox.models import FUNCTIONS, Snippet
from app.inbox.schemas import SnippetRead, SnippetUpdate, SnippetWrite

PLACEHOLDERS = ("first_name", "module_title", "therapist_name")
FUNCTION_LABELS = {
    "autonomy": "Autonomy",
    "alliance": "Alliance",
    "emotion_regulation": "Emotion regulation",
}
FUNCTION_HINTS = {
    "autonomy": "Choices, own pace, own goals",
    "alliance": "Being there, remembering, naming effort",
    "emotion_regulation": "Normalising setbacks, calming, a kinder view",
}

# Anything in single braces without spaces counts as an attempted placeholder, so
# "{__class__}" and "{0.__globals__}" are caught; "{ a thought }" is ordinary text.
_TOKEN = re.compile(r"\{([^{}\s]{1,60})\}")


def unknown_placeholders(text: str) -> list[str]:
    """Placeholder-looking tokens that are not ones we fill in, in order of appearance."""
    seen: list[str] = []
    for match in _TOKEN.finditer(text):
        name = match.group(1)
        if name not in PLACEHOLDERS and match.group(0) not in seen:
            seen.append(match.group(0))
    return seen


def check_placeholders(text: str, *, field: str = "body") -> None:
    unknown = unknown_placeholders(text)
    if unknown:
        known = ", ".join("{" + name + "}" for name in PLACEHOLDERS)
        raise Invalid(
            f"Unknown placeholder {', '.join(unknown)}. You can use {known}.",
            field=field,
            code="unknown_placeholder",
        )


def render(text: str, values: dict[str, str]) -> str:
    """Fill in known placeholders in one pass; everything else stays exactly as written."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in PLACEHOLDERS and name in values:
            return values[name]
        return match.group(0)

    return _TOKEN.sub(replace, text)


@dataclass(frozen=True)
class PlaceholderValues:
    first_name: str
    module_title: str
    therapist_name: str

    def as_dict(self) -> dict[str, str]:
        return {
            "first_name": self.first_name,
            "module_title": self.module_title,
            "therapist_name": self.therapist_name,
        }


# Storage ------------------------------------------------------------------------------------


def _visible(principal: Principal) -> ColumnElement[bool]:
    return or_(
        Snippet.clinic_id.is_(None),
        (Snippet.clinic_id == principal.clinic_id)
        & (Snippet.shared.is_(True) | (Snippet.owner_id == principal.user_id)),
    )


def _read(
    snippet: Snippet, owner_name: str | None, principal: Principal, rendered: str | None
) -> SnippetRead:
    scope: Literal["default", "clinic", "own"]
    if snippet.clinic_id is None:
        scope = "default"
    elif snippet.owner_id == principal.user_id:
        scope = "own"
    else:
        scope = "clinic"
    return SnippetRead(
        id=snippet.id,
        title=snippet.title,
        body=snippet.body,
        function=snippet.function,
        scope=scope,
        shared=snippet.shared,
        owner=(
            PersonRef(id=snippet.owner_id, full_name=owner_name)
            if snippet.owner_id is not None and owner_name
            else None
        ),
        editable=snippet.clinic_id is not None and snippet.owner_id == principal.user_id,
        rendered=rendered,
    )


async def list_snippets(
    db: AsyncSession, principal: Principal, *, values: PlaceholderValues | None = None
) -> list[SnippetRead]:
    """The therapist's own, their clinic's shared and the built-in snippets, in one query.

    Grouped by function, then own before the clinic's before the built-in ones.
    """
    owner = aliased(User)
    rows = await db.execute(
        select(Snippet, owner.full_name)
        .outerjoin(owner, owner.id == Snippet.owner_id)
        .where(_visible(principal))
        .order_by(Snippet.function, Snippet.clinic_id.is_(None), Snippet.title, Snippet.id)
    )
    order = {name: index for index, name in enumerate(FUNCTIONS)}
    result = [
        _read(
            snippet,
            owner_name,
            principal,
            render(snippet.body, values.as_dict()) if values is not None else None,
        )
        for snippet, owner_name in rows
    ]
    scope_rank = {"own": 0, "clinic": 1, "default": 2}
    result.sort(key=lambda s: (order.get(s.function, 9), scope_rank[s.scope], s.title.lower()))
    return result


async def get_visible(db: AsyncSession, principal: Principal, snippet_id: int) -> Snippet:
    """A snippet the therapist may use; anyone else's private one is 404."""
    snippet = await db.scalar(select(Snippet).where(Snippet.id == snippet_id, _visible(principal)))
    if snippet is None:
        raise NotFound("Snippet not found.")
    return snippet


async def _own(db: AsyncSession, principal: Principal, snippet_id: int) -> Snippet:
    snippet = await get_visible(db, principal, snippet_id)
    if snippet.clinic_id is None or snippet.owner_id != principal.user_id:
        raise NotFound("Only your own snippets can be changed.", code="not_your_snippet")
    return snippet


async def create_snippet(
    db: AsyncSession, principal: Principal, actor: Actor, data: SnippetWrite, *, now: datetime
) -> SnippetRead:
    check_placeholders(data.title, field="title")
    check_placeholders(data.body)
    snippet = Snippet(
        clinic_id=principal.clinic_id,
        owner_id=principal.user_id,
        shared=data.shared,
        function=data.function,
        title=data.title.strip(),
        body=data.body.strip(),
        created_at=now,
        updated_at=now,
    )
    db.add(snippet)
    await db.flush()
    await audit.record(
        db, actor, action="create", resource_type="snippet", resource_id=snippet.id, at=now
    )
    return _read(snippet, principal.full_name, principal, None)


async def update_snippet(
    db: AsyncSession,
    principal: Principal,
    actor: Actor,
    snippet_id: int,
    data: SnippetUpdate,
    *,
    now: datetime,
) -> SnippetRead:
    snippet = await _own(db, principal, snippet_id)
    if data.title is not None:
        check_placeholders(data.title, field="title")
        snippet.title = data.title.strip()
    if data.body is not None:
        check_placeholders(data.body)
        snippet.body = data.body.strip()
    if data.function is not None:
        snippet.function = data.function
    if data.shared is not None:
        snippet.shared = data.shared
    snippet.updated_at = now
    await db.flush()
    await audit.record(
        db, actor, action="update", resource_type="snippet", resource_id=snippet.id, at=now
    )
    return _read(snippet, principal.full_name, principal, None)


async def delete_snippet(
    db: AsyncSession, principal: Principal, actor: Actor, snippet_id: int, *, now: datetime
) -> None:
    snippet = await _own(db, principal, snippet_id)
    await db.delete(snippet)
    await db.flush()
    await audit.record(
        db, actor, action="delete", resource_type="snippet", resource_id=snippet_id, at=now
    )
