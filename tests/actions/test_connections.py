"""Named connections: the store's apply, resolution by the worker (settings first, secrets
rendered and redacted, a short cache), and run-deployment through a stored connection
against a real Prefect server, by an executor and by a running engine."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from actions.connections import ConnectionBook, ConnectionDefinition, ConnectionStore
from actions.errors import ActionFailed
from actions.prefect import PREFECT_EXECUTORS
from actions.prefect_api import NO_SERVER, PrefectConnection, PrefectConnections
from actions.templating import Templates
from events.secrets import Secrets
from tests.actions.conftest import MakeExecution
from tests.actions.prefect_server import PrefectObjects, PrefectServer
from tests.actions.test_live import ledger_status
from tests.support import StartEngine
from tests.tripwire.test_cli_automations import invoke
from tripwire.database import create_engine, migrate
from tripwire.definitions import Definitions
from tripwire.engine import Engine

KEY = "pnu_s3cret-staging-key"


def definition(name: str, url: str = "http://prefect:4200/api", **extra: Any) -> Any:
    return ConnectionDefinition(name=name, api_url=url, **extra)


async def open_store(url: str) -> ConnectionStore:
    db = create_engine(url)
    await migrate(db)
    return ConnectionStore(db)


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[ConnectionStore]:
    store = await open_store(database_url)
    yield store
    await store.engine.dispose()


def changes(found: list[Any]) -> list[tuple[str, str]]:
    return [(c.name, c.kind) for c in found]


async def test_apply_creates_updates_keeps_prunes_and_dry_runs(store: ConnectionStore) -> None:
    a, b = definition("a", api_key="{{ secret('A') }}"), definition("b")
    assert changes(await store.apply([a, b])) == [("a", "created"), ("b", "created")]
    assert changes(await store.apply([a, b])) == [("a", "unchanged"), ("b", "unchanged")]

    moved = definition("a", "https://elsewhere/api", api_key="{{ secret('A') }}")
    plan = await store.apply([moved], prune=True, dry_run=True)
    assert changes(plan) == [("a", "updated"), ("b", "deleted")]
    assert [c.definition for c in await store.all()] == [a, b]  # the dry run changed nothing

    assert changes(await store.apply([moved])) == [("a", "updated")]  # no prune: b stays
    assert changes(await store.apply([moved], prune=True)) == [
        ("a", "unchanged"),
        ("b", "deleted"),
    ]
    (stored,) = await store.all()
    assert stored.definition == moved
    assert stored.updated >= stored.created
    assert stored.as_json()["api_key"] == "{{ secret('A') }}"  # the template, as written
    assert await store.get("b") is None
    found = await store.get("a")
    assert found is not None
    assert found.definition.api_url == "https://elsewhere/api"


async def test_a_stored_secret_renders_from_the_environment_and_is_redacted(
    store: ConnectionStore,
) -> None:
    await store.apply(
        [
            definition("cloud", api_key="{{ secret('K') }}"),
            definition("onprem", auth_string="admin:{{ secret('PASS') }}"),
        ]
    )
    templates = Templates(Secrets(environ={"K": KEY, "PASS": "hunter2-pass"}))
    book = ConnectionBook(PrefectConnections(), store)

    cloud = await book.get("cloud", templates)
    onprem = await book.get("onprem", templates)

    assert cloud.api_key is not None
    assert cloud.api_key.get_secret_value() == KEY
    assert cloud.headers() == {"Authorization": f"Bearer {KEY}"}
    assert onprem.headers()["Authorization"].startswith("Basic ")
    assert KEY not in repr(cloud)
    redact = templates.secrets.redact
    assert redact(f"Prefect said 401 to Bearer {KEY}") == "Prefect said 401 to Bearer ***"
    assert redact("admin:hunter2-pass") == "admin:***"
    (stored, _) = await store.all()
    assert KEY not in str(stored.as_json())


async def test_a_missing_secret_fails_naming_the_connection(store: ConnectionStore) -> None:
    await store.apply([definition("cloud", api_key="{{ secret('K') }}")])
    book = ConnectionBook(store=store)

    with pytest.raises(ActionFailed) as failed:
        await book.get("cloud", Templates(Secrets(environ={})))

    assert "template api_key of connection 'cloud'" in failed.value.message
    assert "secret 'K' is not set" in failed.value.message


async def test_settings_win_and_an_unknown_name_says_where_to_define_it(
    store: ConnectionStore, caplog: pytest.LogCaptureFixture
) -> None:
    await store.apply([definition("staging", "http://stored/api"), definition("dev")])
    settings = PrefectConnections(
        named={
            "staging": PrefectConnection(api_url="http://settings/api"),
            "prod": PrefectConnection(api_url="http://prod/api"),
        }
    )
    book = ConnectionBook(settings, store, cache_seconds=0)
    templates = Templates(Secrets(environ={}))

    with caplog.at_level(logging.WARNING, logger="tripwire.actions"):
        for _ in range(3):
            assert (await book.get("staging", templates)).api_url == "http://settings/api"
    assert [r.getMessage() for r in caplog.records] == [
        "connection 'staging' is defined in TRIPWIRE_PREFECT_CONNECTIONS and applied from a "
        "file; actions use the one in the settings"
    ]
    assert (await book.get("dev", templates)).api_url == "http://prefect:4200/api"
    with pytest.raises(ActionFailed) as failed:
        await book.get("nope", templates)
    assert failed.value.message == (
        "no Prefect connection named 'nope'; known: dev, prod, staging (define it under "
        "connections: in a YAML file and tripwire apply it, or in TRIPWIRE_PREFECT_CONNECTIONS)"
    )
    with pytest.raises(ActionFailed, match=NO_SERVER):
        await book.get(None, templates)  # no connection: the settings' default only


class CountingStore(ConnectionStore):
    reads = 0

    async def all(self) -> Any:
        self.reads += 1
        return await super().all()


async def test_a_burst_of_actions_reads_the_table_once(database_url: str) -> None:
    counting = CountingStore((await open_store(database_url)).engine)
    await counting.apply([definition("a")])
    templates = Templates(Secrets(environ={}))
    book = ConnectionBook(store=counting, cache_seconds=60)
    try:
        found = await asyncio.gather(*(book.get("a", templates) for _ in range(20)))
        assert {c.api_url for c in found} == {"http://prefect:4200/api"}
        assert counting.reads == 1
        await counting.apply([definition("b")])
        with pytest.raises(ActionFailed, match="known: a "):
            await book.get("b", templates)  # not seen until the cache expires
        fresh = ConnectionBook(store=counting, cache_seconds=0)
        assert (await fresh.get("b", templates)).api_url == "http://prefect:4200/api"
    finally:
        await counting.engine.dispose()


# Against a real Prefect server


@pytest.mark.prefect
async def test_run_deployment_through_a_stored_connection_creates_a_flow_run(
    tmp_path: Path,
    make_execution: MakeExecution,
    prefect_server: PrefectServer,
    prefect_objects: PrefectObjects,
) -> None:
    store = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'tripwire.db'}")
    try:
        await store.apply([definition("staging", prefect_server.url, api_key="{{ secret('K') }}")])
        objects = prefect_objects
        action = {
            "type": "run-deployment",
            "connection": "staging",
            "deployment": f"{objects.flow_name}/{objects.deployment_name}",
            "parameters": {"rows": 3},
        }
        # No default server in the settings: the stored connection is the only way there.
        run = make_execution(action, prefect=ConnectionBook(store=store), secrets={"K": KEY})
        outcome = await PREFECT_EXECUTORS["run-deployment"](run.request.action, run)
    finally:
        await store.engine.dispose()

    assert outcome.status_code == 201
    (flow_run,) = await objects.runs_of_deployment()
    assert outcome.target == {
        "prefect.resource.id": f"prefect.flow-run.{flow_run['id']}",
        "prefect.resource.name": flow_run["name"],
    }
    assert flow_run["parameters"] == {"rows": 3}


@pytest.mark.prefect
async def test_an_applied_connection_is_used_by_a_running_engine(
    tmp_path: Path,
    start_engine: StartEngine,
    prefect_server: PrefectServer,
    prefect_objects: PrefectObjects,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TW_TEST_STAGING_KEY", KEY)
    objects = prefect_objects
    path = tmp_path / "staging.yaml"
    path.write_text(
        "connections:\n"
        "  - name: staging\n"
        f"    api_url: {prefect_server.url}\n"
        "    api_key: \"{{ secret('TW_TEST_STAGING_KEY') }}\"\n"
        "automations:\n"
        "  - name: reload-staging\n"
        "    trigger: {type: event, expect: [orders.loaded], posture: Reactive, threshold: 1}\n"
        "    actions:\n"
        "      - type: run-deployment\n"
        "        connection: staging\n"
        f"        deployment: {objects.flow_name}/{objects.deployment_name}\n"
        "        parameters: {rows: '{{ event.payload.rows }}'}\n"
    )
    running = await start_engine()
    code, out, err = await invoke("apply", "-f", str(path), "--api", running.url)
    assert code == 0, err
    assert out.splitlines() == ["created connection staging", "created reload-staging"]

    async with running.client() as client:
        event = {"event": "orders.loaded", "resource": {"prefect.resource.id": "orders"}}
        answer = await client.post("/api/events", json={**event, "payload": {"rows": 9}})
        assert answer.status_code == 202, answer.text
        listed = (await client.get("/api/connections")).json()

    (entry,) = await ledger_status(running, "succeeded")
    assert "created" in entry["result"]
    (flow_run,) = await objects.runs_of_deployment()
    assert flow_run["parameters"] == {"rows": 9}
    assert [c["api_key"] for c in listed] == ["{{ secret('TW_TEST_STAGING_KEY') }}"]


async def test_up_with_definitions_applies_their_connections(
    settings_factory: Any, tmp_path: Path
) -> None:
    # `tripwire up --automations FOLDER` hands the engine both parts of the files.
    staging = ConnectionDefinition(name="staging", api_url="http://prefect.internal:4200/api")
    definitions = Definitions(by_section={"connections": [staging], "automations": []})
    engine = Engine(settings_factory(), definitions=definitions)
    await engine.start()
    try:
        stored = await engine.acting.connections.get("staging")
    finally:
        await engine.stop()
    assert stored is not None
    assert stored.definition.api_url == "http://prefect.internal:4200/api"
