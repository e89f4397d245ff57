"""Helpers for HTML forms: parse, validate with the API's schemas, keep what was typed."""

from __future__ import annotations

from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError

from app.web.i18n import gettext as _
from app.web.i18n import translate
from app.web.security import CSRF_FIELD

M = TypeVar("M", bound=BaseModel)


async def form_data(request: Request) -> dict[str, str]:
    """The submitted fields as plain strings, without the CSRF token."""
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str) and k != CSRF_FIELD}


def validate(model: type[M], data: dict[str, Any]) -> tuple[M | None, dict[str, str]]:
    """The model, or a field -> message map to show beside each field."""
    try:
        return model.model_validate(data), {}
    except ValidationError as exc:
        errors: dict[str, str] = {}
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"]) or "form"
            message = translate(err["msg"].removeprefix("Value error, "))
            if err["type"] == "extra_forbidden":
                message = _("This field is not accepted.")
            errors.setdefault(field, message)
        return None, errors
