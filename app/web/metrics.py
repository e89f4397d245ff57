"""Prometheus metrics: request counts and latencies per route template, for the clinic's operators.

Labels carry the route *template* (``/api/v1/enrollments/{enrollment_id}``), never the
concrete path, so no identifier, invitation token or free text can reach the scrape.
"""

from __future__ import annotations

import time

from fastapi import Depends, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.accounts.policy import OPERATOR, all_api_routes
from app.common.routing import Router

UNMATCHED = "unmatched"


class HttpMetrics:
    """One registry per app, so several apps in one process (tests, workers) never share counts."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=self.registry)
        self.requests = Counter(
            "tuki_http_requests",
            "HTTP requests answered, by route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "tuki_http_request_duration_seconds",
            "Time from request to the end of the response body, by route template.",
            ["method", "route"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)


def route_template(scope: Scope, templates: dict[int, str]) -> str:
    """The full template of the route that answered, or a fixed label when none matched.

    Included routers keep their own relative paths, so the full template comes from the
    app's route table (built once) rather than from the route object.
    """
    route = scope.get("route")
    if route is None:
        return "/static" if str(scope.get("path", "")).startswith("/static/") else UNMATCHED
    if not templates:
        templates.update({id(info.route): info.path for info in all_api_routes(scope["app"])})
    return templates.get(id(route), UNMATCHED)


class MetricsMiddleware:
    """Counts every HTTP response, errors included, after routing has named the route."""

    def __init__(self, app: ASGIApp, *, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics
        self._templates: dict[int, str] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            method = str(scope.get("method", "GET"))
            route = route_template(scope, self._templates)
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.duration.labels(method, route).observe(time.perf_counter() - started)


router = Router(tags=["health"])


@router.get(
    "/metrics",
    response_class=Response,
    dependencies=[Depends(OPERATOR)],
    responses={
        200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text format"}
    },
)
async def metrics(request: Request) -> Response:
    """Scraped by the clinic's monitoring with the operator token; counts only, no patient data."""
    registry: HttpMetrics = request.app.state.metrics
    return Response(registry.render(), media_type=CONTENT_TYPE_LATEST)
