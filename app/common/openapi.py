"""What the API promises in its OpenAPI document, so clients and fuzzers know what to expect.

Routes list their route-specific errors with ``responses=``; :func:`install` then completes
every documented operation in one place: the session cookie as a security scheme on every
guarded route, the errors any route can answer (401, 403, 422, 503; 400 for an unreadable
body; 404 when the path names something) and the one error body they all share.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any

from fastapi import FastAPI, Path, Query
from fastapi.openapi.utils import get_openapi
from fastapi.security import APIKeyCookie
from pydantic import BaseModel, BeforeValidator, Field
from starlette.routing import compile_path

Responses = dict[int | str, dict[str, Any]]

# Primary keys are 32-bit integers on PostgreSQL; anything larger can name no row.
MAX_ID = 2**31 - 1
PathId = Annotated[int, Path(ge=1, le=MAX_ID)]
QueryId = Annotated[int | None, Query(ge=1, le=MAX_ID)]
_ISO_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


def _iso_date(value: object) -> object:
    """Only YYYY-MM-DD: pydantic's lax mode would also read ``0`` as 1970-01-01."""
    if isinstance(value, str) and not _ISO_DATE.match(value):
        raise ValueError("give a date as YYYY-MM-DD")
    return value


IsoDate = Annotated[date, BeforeValidator(_iso_date)]

ERRORS: Responses = {
    401: {"description": "Not logged in"},
    403: {"description": "Not allowed, or missing CSRF token"},
    422: {"description": "Invalid input; `detail` names each field"},
}

SECURITY_SCHEME = "session"


def with_errors(**extra: str) -> Responses:
    """The common errors plus route-specific ones, e.g. ``with_errors(e404="Not found")``."""
    responses: Responses = dict(ERRORS)
    for key, description in extra.items():
        responses[int(key.removeprefix("e"))] = {"description": description}
    return responses


class FieldProblem(BaseModel):
    field: str = Field(description="Dotted path of the field; empty for the body as a whole")
    message: str
    type: str


class Problem(BaseModel):
    """Every 4xx and 5xx JSON answer: a message (or one entry per bad field) and a stable code."""

    detail: str | list[FieldProblem] | dict[str, Any]
    code: str = Field(description="Stable, machine-readable reason, e.g. `validation_error`")
    field: str | None = Field(
        default=None, description="The one field at fault, for a domain rule (e.g. a weak password)"
    )


_DEFAULT_DESCRIPTIONS = {
    400: "The body could not be read (not UTF-8 or not JSON)",
    401: "Not logged in",
    403: "Not allowed, or missing CSRF token",
    404: "Not found, or not yours to see",
    422: "Invalid input; `detail` names each field",
    503: "The database was briefly out of reach and nothing was saved; retry",
}
_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}


def _problem_schemas() -> dict[str, Any]:
    schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    defs = schema.pop("$defs", {})
    return {"Problem": schema, **defs}


def _document(operation: dict[str, Any], *, guarded: bool, has_path_params: bool) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    statuses = {403, 422, 503}
    if guarded:
        statuses.add(401)
        operation["security"] = [{SECURITY_SCHEME: []}]
    if "requestBody" in operation:
        statuses.add(400)
    if has_path_params:
        statuses.add(404)
    for status in statuses:
        responses.setdefault(str(status), {"description": _DEFAULT_DESCRIPTIONS[status]})
    for code, response in responses.items():
        if code[0] in "45":
            response["content"] = {"application/json": {"schema": _PROBLEM_REF}}


def build_openapi(app: FastAPI, cookie_name: str) -> dict[str, Any]:
    """FastAPI's document, completed from each route's own guard."""
    from app.accounts.policy import Access, all_api_routes, guard_of

    schema = get_openapi(
        title=app.title,
        version=app.version,
        summary=app.summary,
        description=app.description,
        routes=app.routes,
    )
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    schemas.update(_problem_schemas())
    scheme = APIKeyCookie(name=cookie_name, description="The session cookie set at login")
    components["securitySchemes"] = {
        SECURITY_SCHEME: scheme.model.model_dump(mode="json", by_alias=True, exclude_none=True)
    }
    for info in all_api_routes(app):
        if not info.route.include_in_schema:
            continue
        guard = guard_of(info.route)
        for method in info.methods:
            operation = schema["paths"].get(info.path, {}).get(method.lower())
            if operation is None:
                continue
            _document(
                operation,
                guarded=guard is not None and guard.access is not Access.PUBLIC,
                has_path_params="{" in info.path,
            )
    return schema


def install(app: FastAPI, *, cookie_name: str) -> None:
    """Serve the completed document at ``app.openapi_url`` (built once, on first request)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_openapi(app, cookie_name)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def allowed_methods(app: FastAPI, path: str) -> list[str]:
    """Every method some API route serves at ``path``, for the ``Allow`` header of a 405.

    Starlette only names the methods of the first route whose path matched, which is one of
    several when GET and POST on one path are separate routes.
    """
    from app.accounts.policy import all_api_routes

    table: list[tuple[re.Pattern[str], frozenset[str]]] | None = getattr(
        app.state, "allow_table", None
    )
    if table is None:
        table = [(compile_path(info.path)[0], info.methods) for info in all_api_routes(app)]
        app.state.allow_table = table
    methods: set[str] = set()
    for pattern, route_methods in table:
        if pattern.match(path):
            methods |= route_methods
    return sorted(methods)
