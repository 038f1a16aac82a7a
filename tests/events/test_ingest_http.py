"""POST /api/events: every encoding in, 202 only after JetStream, clear 4xx for bad input."""

from __future__ import annotations

import uuid

import orjson
import pytest

from events.model import MAX_EVENT_BYTES
from tests.support import Running, StartEngine, fixture_events


def event(name: str = "test.happened", **fields: object) -> dict[str, object]:
    body: dict[str, object] = {"event": name, "resource": {"prefect.resource.id": "test.resource"}}
    body.update(fields)
    return body


async def test_one_event_is_accepted_then_stored_with_its_id(engine: Running) -> None:
    event_id = str(uuid.uuid4())
    async with engine.client() as http:
        response = await http.post("/api/events", json=event(id=event_id))
    assert response.status_code == 202
    assert response.json() == {"accepted": [event_id]}
    await engine.wait_stored(1)
    stored = await engine.engine.store.get(event_id)
    assert stored is not None
    assert stored.event == "test.happened"
    assert stored.received >= stored.occurred or stored.received is not None


async def test_real_prefect_events_are_stored_with_ids_and_labels_intact(engine: Running) -> None:
    captured = fixture_events()
    async with engine.client() as http:
        response = await http.post(
            "/api/events",
            content=orjson.dumps(captured),
            headers={"content-type": "application/json"},
        )
    assert response.status_code == 202
    await engine.wait_stored(len(captured))
    for original in captured:
        stored = await engine.engine.store.get(original["id"])
        assert stored is not None
        assert stored.resource == original["resource"]
        assert stored.related == original["related"]
        assert stored.payload == original["payload"]
        assert (
            str(stored.follows) == str(original["follows"])
            if original["follows"]
            else stored.follows is None
        )


async def test_resending_the_same_id_stores_it_once(engine: Running) -> None:
    same = event(id=str(uuid.uuid4()))
    async with engine.client() as http:
        for _ in range(3):
            assert (await http.post("/api/events", json=same)).status_code == 202
        # and once more inside a batch together with a new event
        assert (await http.post("/api/events", json=[same, event()])).status_code == 202
    await engine.wait_stored(2)
    marker = event(id=str(uuid.uuid4()))
    async with engine.client() as http:
        await http.post("/api/events", json=marker)
    await engine.wait_stored(3)
    assert await engine.engine.store.count() == 3


@pytest.mark.parametrize(
    ("body", "status", "field", "words"),
    [
        (b"{not json", 422, None, "not valid JSON"),
        (b'{"resource": {"prefect.resource.id": "x"}}', 422, "event", "required"),
        (b'{"event": "x", "resource": {}}', 422, "resource", "prefect.resource.id"),
        (
            b'{"event": "x", "resource": {"prefect.resource.id": "x"}, "occurred": "yesterday"}',
            422,
            "occurred",
            "",
        ),
        (
            b'{"event": "x", "resource": {"prefect.resource.id": 7}}',
            422,
            "resource.prefect.resource.id",
            "string",
        ),
        (
            b'[{"event": "x", "resource": {"prefect.resource.id": "x"}}, {"event": ""}]',
            422,
            "[1].event",
            "",
        ),
        (b"[]", 422, None, "empty"),
        (
            b'{"event": "' + b"x" * 1025 + b'", "resource": {"prefect.resource.id": "x"}}',
            422,
            "event",
            "1024",
        ),
        (
            b'{"event": "x", "resource": {"prefect.resource.id": "x"}, "related": '
            + orjson.dumps(
                [{"prefect.resource.id": f"r{i}", "prefect.resource.role": "r"} for i in range(101)]
            )
            + b"}",
            422,
            "related",
            "100",
        ),
    ],
)
async def test_bad_input_gets_a_4xx_naming_the_problem_and_nothing_is_published(
    engine: Running, body: bytes, status: int, field: str | None, words: str
) -> None:
    async with engine.client() as http:
        response = await http.post(
            "/api/events", content=body, headers={"content-type": "application/json"}
        )
        assert response.status_code == status, response.text
        detail = response.json()
        if field:
            assert detail["field"] == field
        assert words in detail["detail"]
        # nothing of a rejected batch got in: a good event after it is the only one stored
        assert (await http.post("/api/events", json=event())).status_code == 202
    await engine.wait_stored(1)
    assert await engine.engine.store.count() == 1


async def test_over_size_event_is_413(engine: Running) -> None:
    big = event(payload={"blob": "x" * MAX_EVENT_BYTES})
    async with engine.client() as http:
        response = await http.post("/api/events", json=[event(), big])
    assert response.status_code == 413
    assert response.json()["field"] == "[1]"
    assert "1,500,000" in response.json()["detail"]


async def test_too_many_labels_names_the_resource(engine: Running) -> None:
    labels = {f"l{i}": "v" for i in range(501)} | {"prefect.resource.id": "x"}
    async with engine.client() as http:
        response = await http.post("/api/events", json={"event": "x", "resource": labels})
    assert response.status_code == 422
    assert response.json()["field"] == "resource"
    assert "500" in response.json()["detail"]


async def test_unknown_top_level_fields_are_ignored(engine: Running) -> None:
    async with engine.client() as http:
        response = await http.post("/api/events", json=event(workspace="w", account="a"))
    assert response.status_code == 202


async def test_cloudevents_structured_batch_and_binary_modes(engine: Running) -> None:
    structured = {
        "specversion": "1.0",
        "type": "com.example.order.created",
        "source": "/shop",
        "id": "order-1",
        "subject": "shop.order.1",
        "time": "2026-11-21T09:00:00Z",
        "data": {"total": 12},
        "tenant": "acme",
    }
    batch = [dict(structured, id="order-2"), dict(structured, id="order-3", subject=None)]
    async with engine.client() as http:
        one = await http.post(
            "/api/events", json=structured, headers={"content-type": "application/cloudevents+json"}
        )
        many = await http.post(
            "/api/events",
            content=orjson.dumps(batch),
            headers={"content-type": "application/cloudevents-batch+json"},
        )
        binary = await http.post(
            "/api/events",
            content=b'{"rows": 3}',
            headers={
                "content-type": "application/json",
                "ce-specversion": "1.0",
                "ce-type": "dbt.model.refreshed",
                "ce-source": "dbt://prod",
                "ce-id": "run-9",
                "ce-subject": "dbt.model.sales",
            },
        )
        again = await http.post(
            "/api/events", json=structured, headers={"content-type": "application/cloudevents+json"}
        )
    assert [r.status_code for r in (one, many, binary, again)] == [202] * 4
    assert again.json() == one.json()  # same source + id: same event id, stored once
    await engine.wait_stored(4)
    stored = await engine.engine.store.get(one.json()["accepted"][0])
    assert stored is not None
    assert stored.event == "com.example.order.created"
    assert stored.resource.id == "shop.order.1"
    assert stored.resource.get("cloudevents.source") == "/shop"
    assert stored.resource.get("cloudevents.tenant") == "acme"
    assert stored.payload == {"total": 12}
    assert stored.occurred.isoformat() == "2026-11-21T09:00:00+00:00"
    no_subject = await engine.engine.store.get(many.json()["accepted"][1])
    assert no_subject is not None
    assert no_subject.resource.id == "/shop"
    from_headers = await engine.engine.store.get(binary.json()["accepted"][0])
    assert from_headers is not None
    assert (from_headers.event, from_headers.resource.id, from_headers.payload) == (
        "dbt.model.refreshed",
        "dbt.model.sales",
        {"rows": 3},
    )


CE_HEADERS = {"ce-specversion": "1.0", "ce-type": "t", "ce-source": "s", "ce-id": "1"}


@pytest.mark.parametrize(
    ("change", "body", "field"),
    [
        ({"ce-type": None}, b"{}", "ce-type"),
        ({"ce-specversion": "0.3"}, b"{}", "ce-specversion"),
        ({}, b"{oops", "data"),
    ],
)
async def test_bad_cloudevents_headers_name_the_attribute(
    engine: Running, change: dict[str, str | None], body: bytes, field: str
) -> None:
    headers = {k: v for k, v in (CE_HEADERS | change).items() if v is not None}
    async with engine.client() as http:
        response = await http.post(
            "/api/events", content=body, headers={"content-type": "application/json", **headers}
        )
    assert response.status_code == 422
    assert response.json()["field"] == field


async def test_unsupported_content_type_is_rejected(engine: Running) -> None:
    async with engine.client() as http:
        response = await http.post(
            "/api/events", content=b"<xml/>", headers={"content-type": "application/xml"}
        )
    assert response.status_code == 422
    assert "application/json" in response.json()["detail"]


async def test_nats_down_gives_503_with_retry_after_and_nothing_half_accepted(
    start_engine: StartEngine, tmp_path
) -> None:
    from events.embedded import EmbeddedNats

    nats = EmbeddedNats(tmp_path / "own-nats")
    nats.start()
    try:
        running = await start_engine(nats_url=nats.url)
        nats.stop()
        async with running.client() as http:
            down = await http.post(
                "/api/events", json=[event(id=str(uuid.uuid4())) for _ in range(3)]
            )
            assert down.status_code == 503
            assert down.headers["retry-after"] == "1"
            assert "send them again" in down.json()["detail"]
            nats = EmbeddedNats(tmp_path / "own-nats", port=nats.port)
            nats.start()
            async with __import__("asyncio").timeout(15):
                while not running.engine.bus.is_connected:
                    await __import__("asyncio").sleep(0.05)
            batch = [event(id=str(uuid.uuid4())) for _ in range(3)]
            up = await http.post("/api/events", json=batch)
            assert up.status_code == 202
        await running.wait_stored(3)
        assert await running.engine.store.count() == 3
    finally:
        nats.stop()
