"""Building valid exercise answers from the API's field schema, and small request helpers."""

from __future__ import annotations

from typing import Any

import httpx

API = "/api/v1"

# Values that keep cross-field checks happy (a night that adds up, distress peaks that
# are not below the start); everything else is derived from the field's kind and range.
_BY_NAME: dict[str, Any] = {
    "bed_time": "23:00",
    "lights_out": "23:15",
    "final_wake": "06:30",
    "out_of_bed": "07:00",
    "minutes_to_sleep": 20,
    "minutes_awake": 25,
    "times_woken": 2,
    "volume_ml": 330,
    "abv": 4.7,
    "count": 2,
}


def valid_value(field: dict[str, Any]) -> Any:
    """A value a full submission accepts for one field of ``field_schema``."""
    name = field["name"].rsplit(".", 1)[-1]
    if name in _BY_NAME:
        return _BY_NAME[name]
    kind = field["kind"]
    if kind == "rows":
        return [valid_data(field["fields"])]
    if kind in ("text", "textarea"):
        return "I noticed my shoulders drop when I slowed down."
    if kind == "int":
        lo = int(field["min"]) if field["min"] is not None else 0
        hi = int(field["max"]) if field["max"] is not None else lo + 10
        return (lo + hi) // 2
    if kind == "decimal":
        lo = field["min"] if field["min"] is not None else 0
        hi = field["max"] if field["max"] is not None else lo + 10
        return round((lo + hi) / 2 / 3, 1)
    if kind == "time":
        return "12:30"
    if kind == "date":
        return "2026-03-03"
    if kind == "bool":
        return True
    if kind == "choice":
        return field["choices"][0][0]
    raise AssertionError(f"no sample value for kind {kind}")


def valid_data(fields: list[dict[str, Any]]) -> dict[str, Any]:
    """A full answer for a form described by the API (``answers.N``/``ratings.N`` become lists)."""
    data: dict[str, Any] = {}
    for field in fields:
        base, dot, _ = field["name"].partition(".")
        if dot:
            data.setdefault(base, []).append(valid_value(field))
        else:
            data[field["name"]] = valid_value(field)
    return data


async def path_of(client: httpx.AsyncClient, enrollment_id: int) -> dict[str, Any]:
    response = await client.get(f"{API}/enrollments/{enrollment_id}/modules")
    assert response.status_code == 200, response.text
    return response.json()


def by_ref(path: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {m["ref"]: m for m in path["modules"]}


async def submit_all(
    client: httpx.AsyncClient, enrollment_id: int, module: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    """Save a draft of and submit every exercise of an opened module; return the responses."""
    results = {}
    for exercise in module["exercises"]:
        url = f"{API}/enrollments/{enrollment_id}/exercises/{module['ref']}/{exercise['id']}"
        data = valid_data(exercise["fields"])
        saved = await client.put(url, json={"data": data, "version": 0})
        assert saved.status_code == 200, saved.text
        version = saved.json()["response"]["version"]
        submitted = await client.post(f"{url}/submit", json={"version": version})
        assert submitted.status_code == 200, (exercise["type"], submitted.text)
        results[exercise["id"]] = submitted.json()["response"]
    return results
