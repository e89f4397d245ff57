"""CSRF protection and browser security headers, applied to every request."""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

from fastapi import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.accounts.dependencies import load_principal
from app.common.errors import PermissionDenied
from app.config import Settings

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; object-src 'none'"
)


def _origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _same_origin(request: Request, settings: Settings) -> bool:
    """Browsers send Origin (or at least Referer) on cross-site POSTs; either must be ours."""
    if request.headers.get("sec-fetch-site") == "cross-site":
        return False
    source = request.headers.get("origin") or request.headers.get("referer")
    if not source or source == "null":
        return source is None
    allowed = {_origin_of(settings.base_url), _origin_of(str(request.base_url))}
    return _origin_of(source) in allowed


async def csrf_protect(request: Request) -> None:
    """Unsafe requests must come from our own pages; with a session they must carry its token."""
    if request.method in SAFE_METHODS:
        return
    settings: Settings = request.app.state.settings
    if not _same_origin(request, settings):
        raise PermissionDenied(
            "This request came from another site and was refused.", code="csrf_origin"
        )
    principal = await load_principal(request)
    if principal is None:
        return
    submitted = request.headers.get(CSRF_HEADER)
    content_type = request.headers.get("content-type", "")
    if not submitted and (
        content_type.startswith("application/x-www-form-urlencoded")
        or content_type.startswith("multipart/form-data")
    ):
        form = await request.form()
        value = form.get(CSRF_FIELD)
        submitted = value if isinstance(value, str) else None
    if not submitted or not secrets.compare_digest(submitted, principal.csrf_token):
        raise PermissionDenied(
            "Your form has expired or was not sent from this site. Reload the page and try again.",
            code="csrf_failed",
        )


def protective_headers(path: str, *, hsts: bool) -> dict[str, str]:
    """The headers every response carries; the middleware and the 500 handler both use them."""
    headers = {
        "content-security-policy": CSP,
        "x-content-type-options": "nosniff",
        "x-frame-options": "DENY",
        "referrer-policy": "same-origin",
        "permissions-policy": "camera=(), microphone=(), geolocation=()",
        "cross-origin-opener-policy": "same-origin",
        "cache-control": "public, max-age=3600" if path.startswith("/static/") else "no-store",
    }
    if hsts:
        headers["strict-transport-security"] = "max-age=63072000; includeSubDomains"
    return headers


class SecurityHeadersMiddleware:
    """Adds the same protective headers to every response, errors included."""

    def __init__(self, app: ASGIApp, *, hsts: bool) -> None:
        self.app = app
        self.hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                for name, value in protective_headers(path, hsts=self.hsts).items():
                    if name.encode() not in present:
                        headers.append((name.encode(), value.encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
