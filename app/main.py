"""Application factory: middleware, error handling, routers and lifespan."""

from __future__ import annotations

import gc
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlencode, urlsplit

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.accounts.dependencies import actor_for, bind_db, session_cookie_name
from app.accounts.policy import enforce_classified
from app.audit import service as audit
from app.common import failpoints, openapi
from app.common.clock import Clock
from app.common.crypto import FieldCipher
from app.common.errors import AppError, Invalid, NotAuthenticated, ServiceUnavailable
from app.common.routing import include
from app.config import ROOT_DIR, Settings, get_settings
from app.content.service import get_library
from app.db import Database, is_transient, make_engine
from app.templating import render
from app.web.badges import load_badges
from app.web.i18n import resolve_locale
from app.web.metrics import HttpMetrics, MetricsMiddleware
from app.web.security import SecurityHeadersMiddleware, csrf_protect, protective_headers

log = logging.getLogger("tuki")

API_PREFIX = "/api/v1"


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith(API_PREFIX) or request.url.path in (
        "/healthz",
        "/readyz",
        "/metrics",
    )


def _field_name(loc: tuple[Any, ...]) -> str:
    """``("body", "body")`` is the field ``body``: only the leading location word is dropped."""
    if loc and loc[0] in ("body", "query", "path", "header", "cookie"):
        loc = loc[1:]
    return ".".join(str(part) for part in loc)


def _return_to(request: Request) -> str:
    """Where to come back to after logging in again: the page asked for, query included.

    A form posted after the session ran out returns to the page it was posted from (its
    typed text is kept as a draft), not to the POST target.
    """
    if request.method != "GET" or request.headers.get("hx-request") == "true":
        referer = urlsplit(
            request.headers.get("hx-current-url") or request.headers.get("referer", "")
        )
        if referer.netloc == request.url.netloc and referer.path.startswith("/"):
            return referer.path + (f"?{referer.query}" if referer.query else "")
    url = request.url
    return url.path + (f"?{url.query}" if url.query else "")


def _error_response(
    request: Request,
    status_code: int,
    detail: Any,
    code: str,
    headers: dict[str, str] | None = None,
    field: str | None = None,
) -> Response:
    if _wants_json(request):
        body: dict[str, Any] = {"detail": detail, "code": code}
        if field:
            body["field"] = field
        return JSONResponse(body, status_code=status_code, headers=headers)
    if status_code == 401:
        step = "/login/2fa" if code == "mfa_required" else "/login"
        target = f"{step}?{urlencode({'next': _return_to(request)})}"
        if request.headers.get("hx-request") == "true":
            # An enhanced form: ask htmx to load the login page as a whole page, instead of
            # swapping a fragment of it into the form.
            return Response(status_code=401, headers={"HX-Redirect": target})
        return RedirectResponse(target, 303)
    if code == "mfa_setup_required":
        return RedirectResponse("/account/2fa", status_code=303)
    message = detail if isinstance(detail, str) else "The request could not be processed."
    response = render(
        request,
        "error.html",
        {"status_code": status_code, "message": message},
        status_code=status_code,
    )
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


async def _audit_denial(request: Request, exc: AppError) -> None:
    """Every 403 and every 404 from an object loader goes on the audit trail, in one place.

    A refusal raised with ``keep_writes()`` has already recorded itself in the request's
    transaction. Failing to write the row must not turn the refusal into a 500.
    """
    if exc.status_code not in (403, 404) or exc.commit_anyway:
        return
    id_params = [(k, v) for k, v in request.path_params.items() if k.endswith("_id")]
    resource_type, resource_id = (
        (id_params[-1][0].removesuffix("_id"), id_params[-1][1]) if id_params else ("route", None)
    )
    principal = getattr(request.state, "principal", None)
    try:
        await audit.record_denial(
            request.app.state.db.sessionmaker,
            actor_for(request, principal),
            action="read" if request.method in ("GET", "HEAD") else "write",
            resource_type=resource_type,
            resource_id=resource_id,
            at=request.app.state.clock.now(),
        )
    except Exception as failure:  # the refusal itself must still be answered
        log.error("could not audit a %s refusal: %s", exc.status_code, type(failure).__name__)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def _app_error(request: Request, exc: AppError) -> Response:
        await _audit_denial(request, exc)
        detail: Any = exc.detail
        if exc.extra:
            detail = {"message": exc.detail, **exc.extra}
        if (
            exc.status_code == 401
            and not _wants_json(request)
            and isinstance(exc, NotAuthenticated)
        ):
            return _error_response(request, 401, exc.detail, exc.code)
        field = exc.field if isinstance(exc, Invalid) else None
        return _error_response(request, exc.status_code, detail, exc.code, exc.headers, field)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        errors = [
            {
                "field": _field_name(tuple(err.get("loc", ()))),
                "message": err.get("msg", "invalid"),
                "type": err.get("type", "invalid"),
            }
            for err in exc.errors()
        ]
        if _wants_json(request):
            return JSONResponse({"detail": errors, "code": "validation_error"}, status_code=422)
        return _error_response(
            request, 422, "Some of the information sent was not valid.", "validation_error"
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        detail = "Not found." if exc.status_code == 404 else str(exc.detail)
        headers = dict(exc.headers or {})
        if exc.status_code == 405 and (methods := openapi.allowed_methods(app, request.url.path)):
            headers["Allow"] = ", ".join(methods)
        return _error_response(request, exc.status_code, detail, code, headers)

    @app.exception_handler(sa_exc.DBAPIError)
    @app.exception_handler(sa_exc.TimeoutError)
    @app.exception_handler(ConnectionError)
    async def _database_unavailable(request: Request, exc: Exception) -> Response:
        """A lost connection or a failed commit is 503 + Retry-After: the work was rolled back."""
        if not is_transient(exc):
            return await _unexpected(request, exc)
        name, method, path = type(exc).__name__, request.method, request.url.path
        log.warning("database unavailable (%s) on %s %s", name, method, path)
        unavailable = ServiceUnavailable()
        return _error_response(
            request, 503, unavailable.detail, unavailable.code, unavailable.headers
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        # Log the type and place only: exception messages may carry patient data.
        log.error("unhandled %s on %s %s", type(exc).__name__, request.method, request.url.path)
        response = _error_response(
            request,
            500,
            "Something went wrong on our side. Nothing you typed was saved twice; please try again.",
            "server_error",
        )
        # This handler answers from outside the middleware stack, so add the headers here too.
        hsts = request.app.state.settings.secure_cookies
        for name, value in protective_headers(request.url.path, hsts=hsts).items():
            response.headers.setdefault(name, value)
        return response


GC_YOUNG_THRESHOLD = 10_000


def settle_heap() -> None:
    """Move everything built at start-up out of the garbage collector's sight and collect
    the youngest generation less often.

    The app's modules, templates, content library and compiled statements live as long as
    the process; left in the tracked heap, every full collection walks them again, and those
    pauses were the tail of the latency under load (p99 145 ms against 92 ms frozen at 32
    connections, benchmarks/README.md, scenario A). Objects made by requests are collected
    as before; only the frequency of young collections changes (700 allocations to 10,000).
    """
    gc.collect()
    gc.freeze()
    _young, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)


def create_app(
    settings: Settings | None = None,
    *,
    database: Database | None = None,
    clock: Clock | None = None,
    start_scheduler: bool | None = None,
    freeze_heap_on_start: bool = False,
) -> FastAPI:
    """Build the app. Tests pass their own database (bound to a rolled-back connection) and clock.

    The served process (``app.asgi``) sets ``freeze_heap_on_start``: see ``settle_heap``."""
    settings = settings or get_settings()
    failpoints.configure(os.environ.get(failpoints.ENV_VAR), env=settings.env)

    run_scheduler = settings.scheduler_enabled if start_scheduler is None else start_scheduler

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owns_db = database is None
        if owns_db:
            app.state.db = Database(make_engine(settings))
        scheduler = None
        if run_scheduler:
            from app.reminders.scheduler import build_scheduler

            scheduler = build_scheduler(
                app.state.db, settings=settings, clock=app.state.clock, library=app.state.library
            )
            scheduler.start()
        if freeze_heap_on_start:
            settle_heap()
        yield
        if scheduler is not None:
            from app.common.shutdown import stop_scheduler

            await stop_scheduler(scheduler)
        if owns_db:
            await app.state.db.dispose()

    app = FastAPI(
        title="Tuki",
        version="0.1.0",
        summary="Therapist-assisted internet CBT",
        lifespan=lifespan,
        dependencies=[
            Depends(bind_db),
            Depends(resolve_locale),
            Depends(enforce_classified),
            Depends(csrf_protect),
            Depends(load_badges),
        ],
        openapi_url="/openapi.json" if not settings.is_production else None,
        docs_url="/docs" if not settings.is_production else None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.clock = clock or Clock()
    app.state.cipher = FieldCipher(settings.encryption_keys.get_secret_value())
    app.state.library = get_library(settings.content_dir, settings.content_overlay)
    if database is not None:
        app.state.db = database

    _install_error_handlers(app)
    openapi.install(app, cookie_name=session_cookie_name(settings))
    app.state.metrics = HttpMetrics()
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    app.add_middleware(SecurityHeadersMiddleware, hsts=settings.secure_cookies)
    app.mount("/static", StaticFiles(directory=str(ROOT_DIR / "static")), name="static")

    from app.accounts.pages import router as account_pages
    from app.accounts.router import router as accounts_api
    from app.adherence.pages import router as adherence_pages
    from app.adherence.router import router as adherence_api
    from app.audit.router import pages as audit_pages
    from app.audit.router import router as audit_api
    from app.clinics.pages import router as clinic_pages
    from app.clinics.router import router as clinics_api
    from app.exports.router import router as exports_api
    from app.inbox.pages import router as inbox_pages
    from app.inbox.router import router as inbox_api
    from app.programs.pages import router as program_pages
    from app.programs.router import router as programs_api
    from app.questionnaires.pages import router as questionnaire_pages
    from app.questionnaires.router import router as questionnaires_api
    from app.reminders.pages import router as reminder_pages
    from app.reminders.router import router as reminders_api
    from app.web.health import router as health
    from app.web.metrics import router as metrics

    include(app, health)
    include(app, metrics)
    include(app, accounts_api, API_PREFIX)
    include(app, clinics_api, API_PREFIX)
    include(app, programs_api, API_PREFIX)
    include(app, questionnaires_api, API_PREFIX)
    include(app, reminders_api, API_PREFIX)
    include(app, inbox_api, API_PREFIX)
    include(app, adherence_api, API_PREFIX)
    include(app, exports_api, API_PREFIX)
    include(app, audit_api, API_PREFIX)
    include(app, account_pages)
    include(app, clinic_pages)
    include(app, program_pages)
    include(app, questionnaire_pages)
    include(app, reminder_pages)
    include(app, inbox_pages)
    include(app, adherence_pages)
    include(app, audit_pages)
    return app
