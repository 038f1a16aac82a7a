"""Query endpoints, health and auth over real HTTP."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import httpx

from tests.support import Running, StartEngine, fixture_events


async def seed(engine: Running) -> list[dict[str, Any]]:
    captured = fixture_events()
    async with engine.client() as http:
        assert (await http.post("/api/events", json=captured)).status_code == 202
    await engine.wait_stored(len(captured))
    return captured


async def test_filter_pages_through_next_page_links(engine: Running) -> None:
    captured = await seed(engine)
    flow_runs = [e for e in captured if e["event"].startswith("prefect.flow-run.")]
    async with engine.client() as http:
        response = await http.post(
            "/api/events/filter",
            json={
                "filter": {"event": {"prefix": ["prefect.flow-run."]}, "order": "ASC"},
                "limit": 4,
            },
        )
        assert response.status_code == 200
        body = response.json()
        ids = [e["id"] for e in body["events"]]
        assert body["total"] == len(flow_runs)
        while body["next_page"]:
            body = (await http.get(body["next_page"])).json()
            ids += [e["id"] for e in body["events"]]
    assert sorted(ids) == sorted(e["id"] for e in flow_runs)
    assert len(ids) == len(set(ids))


async def test_a_null_filter_means_everything(engine: Running) -> None:
    captured = await seed(engine)
    async with engine.client() as http:
        response = await http.post("/api/events/filter", json={"filter": None, "limit": 5})
    assert response.status_code == 200
    assert response.json()["total"] == len(captured)


async def test_bad_page_token_and_bad_filter_are_4xx(engine: Running) -> None:
    async with engine.client() as http:
        token = await http.get("/api/events/filter/next", params={"page-token": "garbage"})
        assert token.status_code == 400
        assert token.json()["field"] == "page-token"
        bad = await http.post(
            "/api/events/filter", json={"filter": {"occurred": {"since": "soon"}}}
        )
        assert bad.status_code == 422
        assert "since" in str(bad.json()["detail"])


async def test_get_one_event_and_404_for_an_unknown_id(engine: Running) -> None:
    captured = await seed(engine)
    async with engine.client() as http:
        found = await http.get(f"/api/events/{captured[0]['id']}")
        missing = await http.get(f"/api/events/{uuid.uuid4()}")
    assert found.status_code == 200
    assert found.json()["event"] == captured[0]["event"]
    assert missing.status_code == 404
    assert "retention" in missing.json()["detail"]


async def test_count_by_event_over_http(engine: Running) -> None:
    captured = await seed(engine)
    async with engine.client() as http:
        response = await http.post("/api/events/count-by/event", json={"filter": {}})
        wrong = await http.post("/api/events/count-by/week", json={})
    counts = {b["value"]: b["count"] for b in response.json()}
    assert counts["prefect.flow-run.Failed"] == sum(
        e["event"] == "prefect.flow-run.Failed" for e in captured
    )
    assert sum(counts.values()) == len(captured)
    assert wrong.status_code == 422


async def test_health_reports_bus_database_and_lag(engine: Running) -> None:
    async with engine.client() as http:
        response = await http.get("/api/health")
    report = response.json()
    assert response.status_code == 200
    assert report["status"] == "ok"
    assert report["bus"]["connected"] is True
    assert report["database"] == {"ok": True, "dialect": "sqlite"}
    assert report["store_consumer"]["lag"] == 0


async def test_openapi_lists_the_routes(engine: Running) -> None:
    async with engine.client() as http:
        schema = (await http.get("/openapi.json")).json()
    assert {"/api/events", "/api/events/filter", "/api/events/{event_id}", "/api/health"} <= set(
        schema["paths"]
    )


async def test_api_key_is_required_everywhere_but_health(start_engine: StartEngine) -> None:
    running = await start_engine(api_key="k3y")
    async with running.client() as http:
        assert (await http.get("/api/health")).status_code == 200
        denied = await http.post(
            "/api/events", json={"event": "x", "resource": {"prefect.resource.id": "r"}}
        )
        assert denied.status_code == 401
        assert "TRIPWIRE_API_KEY" in denied.json()["detail"]
        assert denied.headers["www-authenticate"] == "Bearer"
        assert (await http.post("/api/events/filter", json={})).status_code == 401
        assert (await http.get("/docs")).status_code == 401
        wrong = await http.post(
            "/api/events/filter", json={}, headers={"Authorization": "Bearer nope"}
        )
        assert wrong.status_code == 401
        ok = await http.post("/api/events/filter", json={}, headers={"Authorization": "Bearer k3y"})
        assert ok.status_code == 200


async def test_basic_auth_string(start_engine: StartEngine) -> None:
    running = await start_engine(api_auth_string="admin:pw")
    good = "Basic " + base64.b64encode(b"admin:pw").decode()
    bad = "Basic " + base64.b64encode(b"admin:nope").decode()
    async with running.client() as http:
        assert (
            await http.post("/api/events/filter", json={}, headers={"Authorization": good})
        ).status_code == 200
        assert (
            await http.post("/api/events/filter", json={}, headers={"Authorization": bad})
        ).status_code == 401
        assert (
            await http.post("/api/events/filter", json={}, headers={"Authorization": "Basic !!"})
        ).status_code == 401
    async with httpx.AsyncClient(base_url=running.url, auth=("admin", "pw")) as http:
        assert (await http.post("/api/events/filter", json={})).status_code == 200


async def test_a_worker_serves_health_only_and_api_reports_lag(start_engine: StartEngine) -> None:
    from tripwire.engine import Role

    api = await start_engine(roles=frozenset({Role.api}))
    async with api.client() as http:
        event = {"event": "lag.test", "resource": {"prefect.resource.id": "r"}}
        assert (await http.post("/api/events", json=event)).status_code == 202
        # no worker has ever run: the store consumer does not exist yet
        assert (await http.get("/api/health")).json()["store_consumer"]["lag"] is None
    worker = await start_engine(roles=frozenset({Role.worker}))
    async with worker.client() as http:
        assert (await http.get("/api/health")).status_code == 200
        assert (await http.post("/api/events", json=event)).status_code == 404
    await worker.wait_stored(1)
    async with api.client() as http:
        assert (await http.get("/api/health")).json()["store_consumer"]["lag"] == 0


async def test_asyncapi_describes_the_bus_subjects_and_their_messages(engine: Running) -> None:
    async with engine.client() as http:
        response = await http.get("/asyncapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["asyncapi"].startswith("3.")
    names = engine.engine.bus.names
    addresses = {channel["address"] for channel in document["channels"].values()}
    assert addresses == {
        f"{names.events_subject}.{{key}}",
        names.actions_subject,
        names.timers_subject,
        names.silences_subject,
    }
    schemas = document["components"]["schemas"]
    # The messages are the engine's own models, so their fields appear as the engine writes them.
    assert {"event", "resource", "received"} <= set(schemas["ReceivedEvent"]["properties"])
    assert {"firing_id", "action", "triggering_event"} <= set(
        schemas["ActionRequest"]["properties"]
    )


def test_bus_description_never_publishes_nats_credentials() -> None:
    from events.bus import Names
    from tripwire.bus_description import bus_description

    document = bus_description(Names("ns"), "nats://app:s3cret@nats-1:4222,nats://nats-2")
    hosts = [server["host"] for server in document["servers"].values()]
    assert sorted(hosts) == ["nats-1:4222", "nats-2"]
    assert "s3cret" not in str(document)
