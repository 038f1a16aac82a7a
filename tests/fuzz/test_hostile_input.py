"""Bodies no schema describes (too deep, not UTF-8, not JSON) and values past what the
engine can compute with: each is a 4xx, and the pipeline keeps running."""

from __future__ import annotations

import re

import pytest

from tests.support import Running, StartEngine

HOSTILE = {
    "nested-arrays": b"[" * 100_000,
    "nested-objects": b'{"a":' * 5_000 + b"1" + b"}" * 5_000,
    "not-utf8": b'{"a": "\xff\xfe"}',
    "not-json": b"{'event': 'x'}",
    "truncated": b'{"event": "x", "resource": {"prefect.resource.id": ',
    "nul": b'{"event": "a\\u0000", "name": "a\\u0000", "resource": {"prefect.resource.id": "r"}}',
}


async def test_every_body_taking_operation_refuses_hostile_bodies_with_a_4xx(
    engine: Running,
) -> None:
    async with engine.client() as http:
        schema = (await http.get("/openapi.json")).json()
        answers = {}
        for path, operations in schema["paths"].items():
            url = re.sub(r"\{countable\}", "event", path)
            url = re.sub(r"\{[^}]+\}", "x", url)
            for method in operations:
                if method not in ("post", "put", "patch"):
                    continue
                for name, body in HOSTILE.items():
                    response = await http.request(
                        method.upper(),
                        url,
                        content=body,
                        headers={"content-type": "application/json"},
                    )
                    answers[f"{method.upper()} {path} {name}"] = response.status_code
    assert len(answers) >= 13 * len(HOSTILE)  # every operation that takes a body
    failed = {k: v for k, v in answers.items() if not 200 <= v < 500}
    assert not failed


@pytest.mark.parametrize("within", [10**30, "99999999999999w", 900_000_000 * 86400])
async def test_a_window_past_the_year_9999_is_refused_and_evaluation_goes_on(
    engine: Running, within: object
) -> None:
    # Such a window used to be accepted, then stopped the store with an OverflowError
    # on every batch (now + within), so no event was stored any more.
    automation = {
        "name": "forever",
        "trigger": {"type": "event", "expect": ["x"], "threshold": 2, "within": within},
        "actions": [{"type": "do-nothing"}],
    }
    async with engine.client() as http:
        refused = await http.post("/api/automations/", json=automation)
        assert refused.status_code == 422
        assert refused.json()["field"] == "trigger.within"
        automation["trigger"]["within"] = "36500d"  # type: ignore[index]
        assert (await http.post("/api/automations/", json=automation)).status_code == 201
        event = {"event": "x", "resource": {"prefect.resource.id": "r"}}
        for _ in range(2):
            assert (await http.post("/api/events", json=event)).status_code == 202
    await engine.wait_stored(2)


async def test_a_where_comparing_a_string_with_a_number_does_not_stop_the_store(
    engine: Running,
) -> None:
    # jmespath raises TypeError (not a JMESPathError) for "many" < 100: the batch used to
    # fail and come back forever, so nothing after it was stored or evaluated.
    automation = {
        "name": "few-rows",
        "trigger": {"type": "event", "expect": ["rows.loaded"], "where": "payload.rows < `100`"},
        "actions": [{"type": "do-nothing"}],
    }
    async with engine.client() as http:
        assert (await http.post("/api/automations/", json=automation)).status_code == 201
        for rows in ("many", 5):
            event = {
                "event": "rows.loaded",
                "resource": {"prefect.resource.id": "table.sales"},
                "payload": {"rows": rows},
            }
            assert (await http.post("/api/events", json=event)).status_code == 202
        await engine.wait_stored(2)
        decisions = await http.get("/api/automations/few-rows/decisions")
        assert decisions.status_code == 200


async def test_a_webhook_mapping_comparing_a_string_with_a_number_is_a_4xx(
    engine: Running,
) -> None:
    # The same TypeError from jmespath used to be a 500 for the sender.
    webhook = {
        "slug": "orders",
        "mapping": {
            "event": "amount > `100` && 'order.big' || 'order.small'",
            "resource": {"prefect.resource.id": "'shop.orders'"},
        },
    }
    async with engine.client() as http:
        applied = await http.post("/api/webhooks/apply", json={"webhooks": [webhook]})
        assert applied.status_code == 200, applied.text
        assert (await http.post("/hooks/orders", json={"amount": 500})).status_code == 202
        odd = await http.post("/hooks/orders", json={"amount": "lots"})
        assert odd.status_code == 422, odd.text
        assert "amount > `100`" in odd.json()["detail"]


async def test_nul_characters_are_a_4xx_on_every_database(
    database_url: str, start_engine: StartEngine
) -> None:
    # PostgreSQL cannot store NUL in text nor \u0000 in jsonb: these were 500s there.
    engine = await start_engine(database_url=database_url)
    automation = {
        "name": "nul\u0000name",
        "trigger": {"type": "event", "expect": ["x"]},
        "actions": [{"type": "do-nothing"}],
    }
    async with engine.client() as http:
        answers = [
            await http.post("/api/automations/", json=automation),
            await http.post("/api/events/filter", json={"event": {"name": ["a\u0000"]}}),
            await http.post(
                "/api/events/count-by/event", json={"filter": {"resource": {"id": ["r\u0000"]}}}
            ),
            await http.get("/api/actions", params={"automation": "a\u0000"}),
            await http.get("/api/automations/a%00"),
        ]
    statuses = [answer.status_code for answer in answers]
    assert all(status < 500 for status in statuses), [a.text for a in answers]
    if database_url.startswith("postgresql"):  # SQLite stores the name as sent
        assert answers[0].status_code == 422
        assert "NUL" in answers[0].json()["detail"]
