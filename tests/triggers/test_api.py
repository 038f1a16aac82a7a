"""The automations API over real HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx

from tests.support import FIXTURES, Running, StartEngine, eventually
from tripwire.definitions import load_paths


def exported(name: str) -> dict[str, Any]:
    """An automation exactly as `prefect automation inspect NAME --output json` printed it."""
    [automation] = json.loads((FIXTURES / f"{name}.json").read_text())
    return dict(automation)


def failing_flow_run(flow: str = "etl-orders") -> dict[str, Any]:
    """A fresh Prefect-shaped Failed event (occurred now)."""
    return {
        "event": "prefect.flow-run.Failed",
        "resource": {"prefect.resource.id": f"prefect.flow-run.{uuid.uuid4()}"},
        "related": [
            {
                "prefect.resource.id": f"prefect.flow.{flow}",
                "prefect.resource.role": "flow",
                "prefect.resource.name": flow,
            }
        ],
        "payload": {"validated_state": {"type": "FAILED"}},
    }


async def apply(
    http: httpx.AsyncClient, automations: list[dict[str, Any]], **params: bool
) -> dict[str, dict[str, Any]]:
    response = await http.post(
        "/api/automations/apply",
        json={"automations": automations},
        params={k: str(v).lower() for k, v in params.items()},
    )
    assert response.status_code == 200, response.text
    return {change["name"]: change for change in response.json()}


async def names(http: httpx.AsyncClient) -> list[str]:
    return [a["name"] for a in (await http.get("/api/automations/")).json()]


async def test_crud_round_trip(start_engine: StartEngine, database_url: str) -> None:
    running = await start_engine(database_url=database_url)
    definition = exported("etl-orders-keeps-failing")
    async with running.client() as http:
        created = await http.post("/api/automations/", json=definition)
        assert created.status_code == 201, created.text
        body = created.json()
        assert body["id"] == definition["id"]  # Prefect's id is kept
        assert body["trigger"]["threshold"] == 3
        assert body["created"] == body["updated"]

        by_name = (await http.get("/api/automations/etl-orders-keeps-failing")).json()
        by_id = (await http.get(f"/api/automations/{definition['id']}")).json()
        assert by_name == by_id == body

        # What GET returns can be sent back as it is; nothing changed, so nothing moves.
        same = await http.put(f"/api/automations/{body['id']}", json=by_name)
        assert same.status_code == 204, same.text
        assert (await http.get(f"/api/automations/{body['id']}")).json() == body

        changed = {**definition, "description": "rerun it", "tags": ["etl", "paging"]}
        replaced = await http.put(f"/api/automations/{body['id']}", json=changed)
        assert replaced.status_code == 204
        assert replaced.content == b""
        after = (await http.get("/api/automations/etl-orders-keeps-failing")).json()
        assert after["id"] == body["id"]
        assert (after["description"], after["tags"]) == ("rerun it", ["etl", "paging"])
        assert after["updated"] > body["updated"]

        deleted = await http.delete(f"/api/automations/{body['id']}")
        assert deleted.status_code == 204
        gone = await http.get(f"/api/automations/{body['id']}")
        assert gone.status_code == 404
        assert await names(http) == []


async def test_list_and_filter_are_sorted_by_name_as_prefect_asks(engine: Running) -> None:
    async with engine.client() as http:
        for name in ("sales-refresh-expected-hourly", "compound-both-etls-done"):
            assert (await http.post("/api/automations", json=exported(name))).status_code == 201
        expected = ["compound-both-etls-done", "sales-refresh-expected-hourly"]
        assert await names(http) == expected
        empty_body = await http.post("/api/automations/filter")
        assert [a["name"] for a in empty_body.json()] == expected
        # Prefect's client: read_automations_by_name and read_automations(limit, offset)
        by_name = await http.post(
            "/api/automations/filter",
            json={
                "sort": "UPDATED_DESC",
                "automations": {"name": {"any_": ["sales-refresh-expected-hourly"]}},
            },
        )
        assert [a["name"] for a in by_name.json()] == ["sales-refresh-expected-hourly"]
        paged = await http.post(
            "/api/automations/filter",
            json={"automations": None, "sort": None, "limit": 1, "offset": 1},
        )
        assert [a["name"] for a in paged.json()] == ["sales-refresh-expected-hourly"]


async def test_not_found_and_conflicts_say_what_to_do(engine: Running) -> None:
    definition = exported("compound-both-etls-done")
    async with engine.client() as http:
        missing = await http.get("/api/automations/no-such-thing")
        assert missing.status_code == 404
        assert "no automation is named or has the id 'no-such-thing'" in missing.json()["detail"]
        assert "tripwire automations ls" in missing.json()["detail"]
        for call in (
            http.delete("/api/automations/no-such-thing"),
            http.patch("/api/automations/no-such-thing", json={"enabled": False}),
            http.put("/api/automations/no-such-thing", json=definition),
            http.get("/api/automations/no-such-thing/decisions"),
        ):
            assert (await call).status_code == 404

        assert (await http.post("/api/automations/", json=definition)).status_code == 201
        twice = await http.post("/api/automations/", json=definition)
        assert twice.status_code == 409
        assert twice.json()["field"] == "name"
        assert "exists already" in twice.json()["detail"]

        # The same id under another name: a copied Prefect export
        copied = await http.post("/api/automations/", json={**definition, "name": "copy"})
        assert copied.status_code == 409
        assert copied.json()["field"] == "id"
        assert "compound-both-etls-done" in copied.json()["detail"]

        other = {**exported("sales-refresh-expected-hourly")}
        assert (await http.post("/api/automations/", json=other)).status_code == 201
        renamed = await http.put(
            f"/api/automations/{other['id']}", json={**other, "name": definition["name"]}
        )
        assert renamed.status_code == 409
        assert "exists already" in renamed.json()["detail"]
        wrong_id = await http.put(
            f"/api/automations/{other['id']}", json={**other, "id": definition["id"]}
        )
        assert wrong_id.status_code == 422
        assert wrong_id.json()["field"] == "id"


async def test_recreating_a_renamed_name_is_a_clear_conflict(engine: Running) -> None:
    # Without an id, an automation's id derives from its name, and a rename keeps the id.
    definition = {**exported("compound-both-etls-done"), "name": "first"}
    del definition["id"]
    async with engine.client() as http:
        assert (await http.post("/api/automations/", json=definition)).status_code == 201
        renamed = await http.put("/api/automations/first", json={**definition, "name": "second"})
        assert renamed.status_code == 204
        again = await http.post("/api/automations/", json=definition)
        assert again.status_code == 409
        assert "'second' kept when it was renamed from 'first'" in again.json()["detail"]


async def test_invalid_definitions_are_422_naming_each_field(engine: Running) -> None:
    async with engine.client() as http:
        bad = await http.post(
            "/api/automations/",
            json={
                "name": "bad",
                "trigger": {"type": "event", "expects": ["x"], "within": -5},
                "actions": [{"type": "send-slack"}],
            },
        )
        assert bad.status_code == 422
        problems = {e["field"]: e["message"] for e in bad.json()["errors"]}
        assert problems == {
            "trigger.expects": "is not a known field (check the spelling)",
            "trigger.within": "must not be negative",
            "actions[0]": "'webhook_url' is required",
        }
        assert "trigger.expects: is not a known field" in bad.json()["detail"]

        no_trigger = await http.post("/api/automations/", json={"name": "x"})
        assert no_trigger.json()["detail"] == "'trigger' is required"
        broken = await http.post(
            "/api/automations/",
            content=b'{"name": ',
            headers={"content-type": "application/json"},
        )
        assert broken.status_code == 422
        assert broken.json()["detail"].startswith("the body is not valid JSON")
        form = await http.post("/api/automations/", content=b"name=x")
        assert "content-type: application/json" in form.json()["detail"]
        empty = await http.post("/api/automations/")
        assert empty.json()["detail"] == "a JSON body is required"

        unclear = await http.patch("/api/automations/x", json={"enabled": "maybe"})
        assert unclear.status_code == 422
        assert unclear.json()["field"] == "enabled"
        too_many = await http.get("/api/automations/x/decisions", params={"last": 0})
        assert too_many.status_code == 422
        assert too_many.json()["field"] == "last"

        # Integers too large to store are refused here, not with a 500 when stored.
        huge = 2**125
        counted = await http.post(
            "/api/automations/apply",
            json={"automations": [{"name": "h", "trigger": {"type": "event", "threshold": huge}}]},
        )
        assert counted.status_code == 422
        assert counted.json()["errors"][0]["field"] == "automations[0].trigger.threshold"
        deep = {"type": "run-deployment", "deployment_id": str(uuid.uuid4()),
                "parameters": {"rows": [1, {"n": huge}]}}  # fmt: skip
        nested = await http.post(
            "/api/automations/",
            json={"name": "h", "trigger": {"type": "event"}, "actions": [deep]},
        )
        assert nested.status_code == 422
        assert "parameters: rows[1].n: " in nested.json()["detail"]
        assert "outside the 64-bit integer range" in nested.json()["detail"]
        assert await names(http) == []


async def test_apply_is_idempotent_and_dry_run_changes_nothing(
    start_engine: StartEngine, database_url: str
) -> None:
    running = await start_engine(database_url=database_url)
    loaded = load_paths(sorted(FIXTURES.glob("*.yaml")))
    assert loaded.ok
    definitions = [a.model_dump(mode="json", by_alias=True) for a in loaded.automations]
    every = {a.name for a in loaded.automations}
    async with running.client() as http:
        dry = await apply(http, definitions, dry_run=True)
        assert {name: c["kind"] for name, c in dry.items()} == dict.fromkeys(every, "created")
        assert await names(http) == []

        first = await apply(http, definitions)
        assert {c["kind"] for c in first.values()} == {"created"}
        assert set(await names(http)) == every
        again = await apply(http, definitions)
        assert {c["kind"] for c in again.values()} == {"unchanged"}

        # Only the description changes: an update that keeps trigger state
        described = [
            {**d, "description": "new words"} if d["name"] == "compound-both-etls-done" else d
            for d in definitions
        ]
        kept = await apply(http, described)
        assert kept["compound-both-etls-done"]["kind"] == "updated"
        assert kept["compound-both-etls-done"]["reset_triggers"] == []

        # A different threshold resets the trigger; a dry run only says so
        stricter = [
            {**d, "trigger": {**d["trigger"], "threshold": 5}}
            if d["name"] == "etl-orders-keeps-failing"
            else d
            for d in described
        ]
        would = await apply(http, stricter, dry_run=True)
        change = would["etl-orders-keeps-failing"]
        assert change["kind"] == "updated"
        stored = (await http.get("/api/automations/etl-orders-keeps-failing")).json()
        assert change["reset_triggers"] == [stored["trigger"]["id"]]
        assert stored["trigger"]["threshold"] == 3
        assert (await apply(http, stricter))["etl-orders-keeps-failing"]["kind"] == "updated"
        stored = (await http.get("/api/automations/etl-orders-keeps-failing")).json()
        assert stored["trigger"]["threshold"] == 5


async def test_apply_prune_deletes_what_is_not_given(engine: Running) -> None:
    definitions = [
        exported(n)
        for n in (
            "compound-both-etls-done",
            "etl-orders-keeps-failing",
            "sales-refresh-expected-hourly",
        )
    ]
    async with engine.client() as http:
        await apply(http, definitions)
        kept = definitions[:1]
        without_prune = await apply(http, kept)
        assert list(without_prune) == ["compound-both-etls-done"]
        dry = await apply(http, kept, prune=True, dry_run=True)
        assert dry["etl-orders-keeps-failing"]["kind"] == "deleted"
        assert dry["sales-refresh-expected-hourly"]["kind"] == "deleted"
        assert len(await names(http)) == 3
        await apply(http, kept, prune=True)
        assert await names(http) == ["compound-both-etls-done"]


async def test_apply_rejects_duplicate_names_and_bad_definitions_whole(engine: Running) -> None:
    good = exported("compound-both-etls-done")
    async with engine.client() as http:
        twice = await http.post("/api/automations/apply", json={"automations": [good, good]})
        assert twice.status_code == 422
        assert twice.json()["field"] == "automations[1].name"
        bad = await http.post(
            "/api/automations/apply",
            json={"automations": [good, {**good, "name": "b", "trigger": {"type": "nope"}}]},
        )
        assert bad.status_code == 422
        assert bad.json()["field"].startswith("automations[1].trigger")
        assert await names(http) == []


async def wait_for_decisions(
    http: httpx.AsyncClient, ref: str, count: int, **params: Any
) -> list[dict[str, Any]]:
    """Wait until the worker recorded `count` decisions."""

    async def recorded() -> list[dict[str, Any]] | None:
        response = await http.get(f"/api/automations/{ref}/decisions", params=params)
        assert response.status_code == 200
        found: list[dict[str, Any]] = response.json()
        return found if len(found) >= count else None

    return await eventually(recorded, 10, f"{count} decisions of {ref}")


async def test_an_applied_automation_decides_at_once_and_explains_itself(
    start_engine: StartEngine,
) -> None:
    # Both events may arrive in one batch: record every decision of a batch.
    engine = await start_engine(decisions_per_batch=10)
    definition = exported("etl-orders-keeps-failing")
    events = [failing_flow_run() for _ in range(2)]
    for event in events:  # one flow run, so one window (for_each: prefect.resource.id)
        event["resource"] = events[0]["resource"]
    async with engine.client() as http:
        await apply(http, [definition])
        assert (await http.get("/api/automations/etl-orders-keeps-failing/decisions")).json() == []
        # No wait for the workers' poll: the API reloaded the in-process worker.
        accepted = await http.post("/api/events", json=events)
        ids = accepted.json()["accepted"]
        found = await wait_for_decisions(http, "etl-orders-keeps-failing", 2)
        assert [d["event_id"] for d in found] == ids
        assert [d["outcome"] for d in found] == ["counted", "counted"]
        assert "2 of 3" in found[1]["reason"]
        one = await wait_for_decisions(http, definition["id"], 1, event_id=ids[0])
        assert [d["event_id"] for d in one] == [ids[0]]
        newest = await wait_for_decisions(http, definition["id"], 1, last=1)
        assert [d["event_id"] for d in newest] == [ids[1]]

        # Changing the trigger now drops the open window, and apply says so.
        stricter = {**definition, "trigger": {**definition["trigger"], "threshold": 4}}
        change = (await apply(http, [stricter], dry_run=True))["etl-orders-keeps-failing"]
        assert change["open_windows"] == 1
        stored = (await http.get(f"/api/automations/{definition['id']}")).json()
        assert change["reset_triggers"] == [stored["trigger"]["id"]]


async def test_pause_and_resume(start_engine: StartEngine, database_url: str) -> None:
    running = await start_engine(database_url=database_url)
    definition = exported("sales-refresh-expected-hourly")
    async with running.client() as http:
        await http.post("/api/automations/", json=definition)
        paused = await http.patch(
            "/api/automations/sales-refresh-expected-hourly", json={"enabled": False}
        )
        assert paused.status_code == 204
        stored = (await http.get(f"/api/automations/{definition['id']}")).json()
        assert stored["enabled"] is False
        resumed = await http.patch(f"/api/automations/{definition['id']}", json={"enabled": True})
        assert resumed.status_code == 204
        stored = (await http.get(f"/api/automations/{definition['id']}")).json()
        assert stored["enabled"] is True


async def test_names_with_slashes_and_spaces_work_in_paths(engine: Running) -> None:
    definition = {**exported("compound-both-etls-done"), "name": "team a/nightly etl"}
    del definition["id"]
    async with engine.client() as http:
        assert (await http.post("/api/automations/", json=definition)).status_code == 201
        found = await http.get("/api/automations/team%20a%2Fnightly%20etl")
        assert found.json()["name"] == "team a/nightly etl"
        decisions = await http.get("/api/automations/team%20a%2Fnightly%20etl/decisions")
        assert decisions.json() == []
        assert (await http.delete("/api/automations/team%20a%2Fnightly%20etl")).status_code == 204


async def test_openapi_documents_the_automation_routes(engine: Running) -> None:
    async with engine.client() as http:
        paths = (await http.get("/openapi.json")).json()["paths"]
    assert {
        "/api/automations/",
        "/api/automations/filter",
        "/api/automations/apply",
        "/api/automations/{ref}",
        "/api/automations/{ref}/decisions",
    } <= set(paths)
