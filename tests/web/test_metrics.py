"""GET /metrics: Prometheus counts per route template, readable only with the operator token."""

from __future__ import annotations

import httpx
from pydantic import SecretStr

from app.main import create_app
from tests.factories import build_world, login

TOKEN = "operator-token-for-tests-0123456789"


def metrics_app(settings, database, clock, token: str | None = TOKEN):  # type: ignore[no-untyped-def]
    configured = settings.model_copy(update={"metrics_token": SecretStr(token) if token else None})
    return create_app(configured, database=database, clock=clock)


def client_of(app) -> httpx.AsyncClient:  # type: ignore[no-untyped-def]
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample line in the Prometheus text format, 0 when absent."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith(f"{name}{{"):
            series, value = line.rsplit(" ", 1)
            inner = series[len(name) + 1 : -1]
            if ",".join(sorted(inner.split(","))) == wanted:
                return float(value)
    return 0.0


async def test_counts_requests_by_route_template_and_status(settings, database, db, clock):
    app = metrics_app(settings, database, clock)
    world = await build_world(db, clock.now())
    client = client_of(app)
    await login(client, world.therapist.email)
    for _ in range(3):
        ok = await client.get(f"/api/v1/enrollments/{world.enrollment.id}/adherence")
        assert ok.status_code == 200, ok.text
    missing = await client.get("/api/v1/enrollments/999999/adherence")
    assert missing.status_code == 404
    assert (await client.get("/no/such/page/secret-token-abc")).status_code == 404

    scrape = await client_of(app).get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert scrape.status_code == 200, scrape.text
    assert scrape.headers["content-type"].startswith("text/plain")
    text = scrape.text
    route = "/api/v1/enrollments/{enrollment_id}/adherence"
    assert sample(text, "tuki_http_requests_total", method="GET", route=route, status="200") == 3
    assert sample(text, "tuki_http_requests_total", method="GET", route=route, status="404") == 1
    assert (
        sample(text, "tuki_http_requests_total", method="GET", route="unmatched", status="404") == 1
    )
    assert sample(text, "tuki_http_request_duration_seconds_count", method="GET", route=route) == 4
    # Only templates reach the labels: no concrete id, no path typed by a caller.
    assert f"/enrollments/{world.enrollment.id}/" not in text
    assert "secret-token-abc" not in text


async def test_only_the_operator_token_opens_it(settings, database, db, clock):
    app = metrics_app(settings, database, clock)
    world = await build_world(db, clock.now())
    anonymous = await client_of(app).get("/metrics")
    assert anonymous.status_code == 401
    assert anonymous.json()["code"] == "not_authenticated"
    wrong = await client_of(app).get("/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    for user in (world.admin, world.therapist, world.patient_user):
        staff = client_of(app)
        await login(staff, user.email)
        denied = await staff.get("/metrics")
        assert denied.status_code == 403, user.role
        assert "tuki_http_requests" not in denied.text


async def test_without_a_configured_token_nobody_reads_it(settings, database, db, clock):
    app = metrics_app(settings, database, clock, token=None)
    for header in ({}, {"Authorization": "Bearer "}, {"Authorization": "Bearer None"}):
        response = await client_of(app).get("/metrics", headers=header)
        assert response.status_code == 401
