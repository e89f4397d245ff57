"""What the API fuzz run found, each pinned by a direct test so it cannot come back unnoticed.

These run in process against the per-test database, fast, independent of the fuzzer.
"""

from __future__ import annotations

import re
from typing import Any

import jsonschema_rs
import pytest

from tests.factories import build_world, login

API = "/api/v1"
TOO_BIG = 2**63  # past a 64-bit integer: used to reach the database and fail there


async def _openapi(client) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    return response.json()  # type: ignore[no-any-return]


def _validate(schema: dict[str, Any], fragment: dict[str, Any], instance: Any) -> None:
    """Validate like the fuzzer does (same validator), resolving ``#/components/...``."""
    validator = jsonschema_rs.Draft202012Validator(
        {**fragment, "components": schema["components"]}, validate_formats=True
    )
    validator.validate(instance)


class TestIdentifiers:
    @pytest.mark.parametrize(
        "path",
        [
            f"{API}/enrollments/{TOO_BIG}",
            f"{API}/enrollments/{TOO_BIG}/modules",
            f"{API}/enrollments/{TOO_BIG}/modules/01-start",
            f"{API}/enrollments/{TOO_BIG}/adherence",
            f"{API}/enrollments/{TOO_BIG}/reminder-preferences",
            f"{API}/enrollments/{TOO_BIG}/tailoring",
        ],
    )
    async def test_an_id_past_the_database_range_is_422_not_500(self, client, db, clock, path):
        world = await build_world(db, clock.now())
        await login(client, world.therapist.email)
        response = await client.get(path)
        assert response.status_code == 422, response.text
        assert response.json()["code"] == "validation_error"

    async def test_a_huge_change_id_is_422_not_500(self, client, db, clock):
        world = await build_world(db, clock.now())
        await login(client, world.therapist.email)
        response = await client.post(
            f"{API}/enrollments/{world.enrollment.id}/tailoring/{TOO_BIG}/revert"
        )
        assert response.status_code == 422, response.text

    async def test_an_id_in_a_body_is_bounded_too(self, client, db, clock):
        """PostgreSQL answered 500 (int32 overflow) for a huge ``therapist_id``."""
        world = await build_world(db, clock.now())
        await login(client, world.admin.email)
        body = {
            "full_name": "Kalle Koe",
            "email": "kalle.koe@example.org",
            "program": "panic",
            "therapist_id": -25_099_188_205_497,
        }
        response = await client.post(f"{API}/enrollments", json=body)
        assert response.status_code == 422, response.text
        assert response.json()["detail"][0]["field"] == "therapist_id"
        body["therapist_id"] = TOO_BIG
        assert (await client.post(f"{API}/enrollments", json=body)).status_code == 422
        changed = await client.patch(
            f"{API}/enrollments/{world.enrollment.id}", json={"therapist_id": TOO_BIG}
        )
        assert changed.status_code == 422


class TestMethodNotAllowed:
    @pytest.mark.parametrize(
        ("path", "allow"),
        [
            (f"{API}/therapists", "GET, POST"),
            (f"{API}/clinic", "GET, PATCH"),
            (f"{API}/snippets/1", "DELETE, PATCH"),
            (f"{API}/enrollments/1", "GET, PATCH"),
        ],
    )
    async def test_allow_names_every_method_of_the_path(self, client, db, clock, path, allow):
        """Starlette named only the first matching route's methods (``Allow: GET``)."""
        response = await client.request("OPTIONS", path)
        assert response.status_code == 405
        assert response.headers["Allow"] == allow


class TestDocument:
    async def test_guarded_operations_declare_the_session_cookie(self, client):
        schema = await _openapi(client)
        scheme = schema["components"]["securitySchemes"]["session"]
        assert scheme == {
            "type": "apiKey",
            "in": "cookie",
            "name": "tuki_session",
            "description": "The session cookie set at login",
        }
        paths = schema["paths"]
        assert paths[f"{API}/me"]["get"]["security"] == [{"session": []}]
        assert "security" not in paths[f"{API}/auth/login"]["post"]
        assert "security" not in paths["/healthz"]["get"]

    async def test_the_documented_422_matches_what_the_api_sends(self, client, db, clock):
        """FastAPI documented ``{"detail": [{"loc", "msg", ...}]}``; the API sends field/message."""
        schema = await _openapi(client)
        world = await build_world(db, clock.now())
        await login(client, world.patient_user.email)
        response = await client.get(f"{API}/enrollments/not-a-number/modules")
        assert response.status_code == 422
        documented = schema["paths"][f"{API}/enrollments/{{enrollment_id}}/modules"]["get"]
        body_schema = documented["responses"]["422"]["content"]["application/json"]["schema"]
        _validate(schema, body_schema, response.json())
        assert "HTTPValidationError" not in schema["components"]["schemas"]

    async def test_an_unreadable_body_is_a_documented_400(self, client, db, clock):
        schema = await _openapi(client)
        world = await build_world(db, clock.now())
        await login(client, world.therapist.email)
        response = await client.post(
            f"{API}/snippets",
            content=b"\x80 not UTF-8",
            headers={"Content-Type": "application/json"},
        )
        assert response.status_code == 400
        assert "400" in schema["paths"][f"{API}/snippets"]["post"]["responses"]

    async def test_reminder_times_match_their_documented_form(self, client, db, clock):
        """``time`` format demands a UTC offset; these are local wall-clock times without one."""
        schema = await _openapi(client)
        world = await build_world(db, clock.now())
        await login(client, world.patient_user.email)
        path = f"{API}/enrollments/{{enrollment_id}}/reminder-preferences"
        response = await client.get(path.format(enrollment_id=world.enrollment.id))
        assert response.status_code == 200
        assert response.json()["quiet_hours_start"] is not None
        documented = schema["paths"][path]["get"]["responses"]["200"]["content"]
        _validate(schema, documented["application/json"]["schema"], response.json())

    async def test_enumerable_values_are_listed(self, client):
        schema = await _openapi(client)
        report = schema["paths"][f"{API}/reports/adherence"]["get"]["parameters"]
        program = next(p for p in report if p["name"] == "program")["schema"]["anyOf"][0]
        assert "depression" in program["enum"] and len(program["enum"]) == 9
        create = schema["components"]["schemas"]["EnrollmentCreate"]["properties"]
        assert "Europe/Helsinki" in create["timezone"]["enum"]
        crisis = schema["components"]["schemas"]["ClinicCrisisUpdate"]["properties"]
        assert crisis["emergency_number"]["type"] == "string"  # null is refused, so not offered


class TestStrictInput:
    async def test_a_date_filter_must_be_a_date(self, client, db, clock):
        """``enrolled_to=0`` used to be read as 1970-01-01 and answered 200."""
        world = await build_world(db, clock.now())
        await login(client, world.admin.email)
        response = await client.get(f"{API}/reports/adherence", params={"enrolled_to": "0"})
        assert response.status_code == 422
        assert response.json()["detail"][0]["field"] == "enrolled_to"
        fine = await client.get(f"{API}/reports/adherence", params={"enrolled_to": "2026-12-31"})
        assert fine.status_code == 200, fine.text

    async def test_a_flag_must_be_a_boolean(self, client, db, clock):
        """``"shared": 0`` used to be taken as false."""
        world = await build_world(db, clock.now())
        await login(client, world.therapist.email)
        body = {"title": "Hello", "body": "Hi there", "function": "alliance", "shared": 0}
        response = await client.post(f"{API}/snippets", json=body)
        assert response.status_code == 422
        assert response.json()["detail"][0]["field"] == "shared"
        body["shared"] = False
        assert (await client.post(f"{API}/snippets", json=body)).status_code == 201

    async def test_a_whole_number_written_with_a_decimal_point_is_an_integer(
        self, client, db, clock
    ):
        """JSON Schema counts 730.0 as an integer; strict mode had refused it with 422."""
        world = await build_world(db, clock.now())
        await login(client, world.admin.email)
        response = await client.patch(f"{API}/clinic", json={"retention_days": 730.0})
        assert response.status_code == 200, response.text
        assert response.json()["retention_days"] == 730
        for bad in ("730", True, 730.5):
            refused = await client.patch(f"{API}/clinic", json={"retention_days": bad})
            assert refused.status_code == 422, bad

    async def test_inactivity_steps_are_bounded_in_the_document(self, client):
        schema = await _openapi(client)
        rules = schema["components"]["schemas"]["RuleConfigUpdate"]["properties"]
        assert rules["inactivity_days"]["items"] == {
            "type": "integer",
            "minimum": 1,
            "maximum": 180,
        }

    async def test_control_characters_are_refused_as_documented(self, client, db, clock):
        schema = await _openapi(client)
        pattern = schema["components"]["schemas"]["SnippetWrite"]["properties"]["title"]["pattern"]
        assert re.search(pattern, "Hello") and not re.search(pattern, "Hel\x07lo")
        world = await build_world(db, clock.now())
        await login(client, world.therapist.email)
        body = {"title": "Hel\x07lo", "body": "Hi", "function": "alliance"}
        assert (await client.post(f"{API}/snippets", json=body)).status_code == 422


class TestDemoDomain:
    async def test_an_admin_can_add_a_colleague_at_a_test_domain(self, client, db, clock):
        """The demo clinic lives under ``.test``; its admin could not add anyone there."""
        world = await build_world(db, clock.now())
        await login(client, world.admin.email)
        response = await client.post(
            f"{API}/therapists",
            json={"full_name": "Testi Terapeutti", "email": "new.colleague@demo.tuki.test"},
        )
        assert response.status_code == 201, response.text
        bad = await client.post(
            f"{API}/therapists", json={"full_name": "Ei Osoitetta", "email": "not-an-address"}
        )
        assert bad.status_code == 422
