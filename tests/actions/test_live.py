"""Actions in a running engine: an event fires an automation, its webhook is called once,
the ledger and the lifecycle events say so; failures reach the dead letter and re-run."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from events import clock
from events.filters import EventFilter
from tests.actions.receivers import Receiver, Reply
from tests.support import Running, StartEngine, eventually
from tests.triggers.conftest import flow_run
from tests.triggers.test_live import action_requests, post, stored
from tests.tripwire.test_cli_automations import invoke
from tripwire.engine import Role


def on_failure(url: str, name: str = "tell-ops", **action: Any) -> dict[str, Any]:
    return {
        "name": name,
        "trigger": {
            "type": "event",
            "match": {"prefect.resource.id": "prefect.flow-run.*"},
            "expect": ["prefect.flow-run.Failed"],
            "posture": "Reactive",
            "threshold": 1,
            "within": 0,
        },
        "actions": [
            {
                "type": "call-webhook",
                "url": url,
                "json": {
                    "run": "{{ event.resource['prefect.resource.name'] }}",
                    "state": "{{ event.resource['prefect.state-name'] }}",
                },
                **action,
            }
        ],
    }


def failed_run() -> Any:
    labels = {"prefect.resource.name": "nightly-7", "prefect.state-name": "Failed"}
    return flow_run("Failed", when=clock.now(), labels=labels)


def named(*names: str) -> EventFilter:
    return EventFilter.model_validate({"event": {"name": list(names)}})


@pytest.fixture
async def hook() -> AsyncIterator[Receiver]:
    async with Receiver(Reply(200, "thanks")) as receiver:
        yield receiver


async def ledger_status(running: Running, status: str, count: int = 1) -> list[dict[str, Any]]:
    ledger = running.engine.acting.ledger

    async def listed() -> list[dict[str, Any]]:
        found = await ledger.list(status=status)  # type: ignore[arg-type]
        return found if len(found) >= count else []

    return await eventually(listed, 15, f"{count} action request(s) {status}")


async def test_a_firing_calls_the_webhook_once_and_records_it(
    start_engine: StartEngine, hook: Receiver
) -> None:
    running = await start_engine(allow_private_urls=True)
    async with running.client() as client:
        answer = await client.post("/api/automations/", json=on_failure(hook.url("/ops")))
        assert answer.status_code == 201, answer.text
    failed = failed_run()
    await post(running, failed)

    (call,) = await hook.wait_for(1)
    assert call.path == "/ops"
    assert call.json() == {"run": "nightly-7", "state": "Failed"}
    (entry,) = await ledger_status(running, "succeeded")
    assert call.headers["idempotency-key"] == entry["id"]
    assert entry["attempts"] == 1
    assert "200" in entry["result"]
    await stored(running, named("tripwire.action.executed"), 1)
    (executed,) = (await running.engine.store.read(named("tripwire.action.executed"))).events
    roles = {r.role: r for r in executed.related}
    assert roles["triggering-event"].id == f"prefect.event.{failed.id}"
    assert roles["automation"].name == "tell-ops"
    assert executed.payload["attempt"] == 1

    async with running.client() as client:
        listed = (await client.get("/api/actions", params={"automation": "tell-ops"})).json()
        one = (await client.get(f"/api/actions/{entry['id']}")).json()
    assert [e["id"] for e in listed] == [entry["id"]]
    assert one["request"]["triggering_event"]["id"] == str(failed.id)
    assert len(hook.requests) == 1


async def test_a_worker_without_actions_leaves_them_to_the_actions_role(
    start_engine: StartEngine, hook: Receiver
) -> None:
    evaluating = await start_engine(
        roles=frozenset({Role.api, Role.worker}), allow_private_urls=True
    )
    assert evaluating.engine.acting.consumer not in evaluating.engine.consumers
    async with evaluating.client() as client:
        answer = await client.post("/api/automations/", json=on_failure(hook.url("/ops")))
        assert answer.status_code == 201, answer.text
    await post(evaluating, failed_run())
    await stored(evaluating, named("tripwire.automation.triggered"), 1)
    [request] = await action_requests(evaluating)  # requested, and nobody runs it yet

    acting = await start_engine(roles=frozenset({Role.actions}), allow_private_urls=True)
    assert acting.engine.consumers == [acting.engine.acting.consumer]
    (call,) = await hook.wait_for(1)
    assert call.headers["idempotency-key"] == str(request.id)
    [entry] = await ledger_status(acting, "succeeded")
    assert entry["id"] == str(request.id)
    await stored(evaluating, named("tripwire.action.executed"), 1)


async def test_a_failing_target_is_retried_then_dead_lettered_then_re_run(
    start_engine: StartEngine, hook: Receiver
) -> None:
    running = await start_engine(
        allow_private_urls=True, action_retries=1, action_retry_delay="0.05s"
    )
    hook.script(Reply(503, "down"), Reply(500, "still down"))
    async with running.client() as client:
        answer = await client.post("/api/automations/", json=on_failure(hook.url()))
        assert answer.status_code == 201, answer.text
    await post(running, failed_run())

    (entry,) = await ledger_status(running, "failed")
    assert entry["attempts"] == 2
    assert entry["status_code"] == 500
    assert "still down" in entry["last_error"]
    await stored(running, named("tripwire.action.failed"), 1)
    async with running.client() as client:
        listed = (await client.get("/api/actions", params={"status": "failed"})).json()
        assert [e["id"] for e in listed] == [entry["id"]]
        retried = await client.post(f"/api/actions/{entry['id']}/retry")
        assert retried.status_code == 202, retried.text
        assert retried.json()["round"] == 1
        again = await client.post(f"/api/actions/{entry['id']}/retry")
        assert again.status_code in (202, 409)  # pending may be re-sent; running may not
        missing = await client.post("/api/actions/nope/retry")
        assert missing.status_code == 404
        assert "no action request" in missing.json()["detail"]

    (done,) = await ledger_status(running, "succeeded")  # the receiver answers 200 now
    assert done["round"] == 1
    assert len(hook.requests) == 3
    # one failed event for round 0, one executed event for round 1
    await stored(running, named("tripwire.action.executed"), 1)
    assert await running.engine.store.count(named("tripwire.action.failed")) == 1


async def test_private_addresses_are_refused_without_the_setting(
    start_engine: StartEngine, hook: Receiver
) -> None:
    running = await start_engine()
    async with running.client() as client:
        answer = await client.post("/api/automations/", json=on_failure(hook.url()))
        assert answer.status_code == 201, answer.text
    await post(running, failed_run())
    (entry,) = await ledger_status(running, "failed")
    assert "loopback" in entry["last_error"]
    assert "TRIPWIRE_ALLOW_PRIVATE_URLS" in entry["last_error"]
    assert entry["attempts"] == 1  # permanent: not retried
    assert hook.requests == []


async def test_the_cli_lists_the_dead_letter_and_re_runs_it(
    start_engine: StartEngine, hook: Receiver
) -> None:
    running = await start_engine(allow_private_urls=True, action_retries=0)
    hook.script(Reply(404, "no such hook"))
    async with running.client() as client:
        answer = await client.post("/api/automations/", json=on_failure(hook.url()))
        assert answer.status_code == 201, answer.text
    await post(running, failed_run())
    (entry,) = await ledger_status(running, "failed")

    code, out, err = await invoke("actions", "ls", "--failed", "--api", running.url)
    assert code == 0, err
    header, row, hint = out.splitlines()
    assert header.split()[:4] == ["CREATED", "AUTOMATION", "TYPE", "STATUS"]
    assert entry["id"] in row
    assert "tell-ops" in row
    assert "404" in row
    assert "tripwire actions retry" in hint

    code, out, err = await invoke("actions", "retry", entry["id"], "--api", running.url)
    assert code == 0, err
    assert f"re-running {entry['id']} (round 1)" in out
    await ledger_status(running, "succeeded")
    code, out, err = await invoke("actions", "retry", entry["id"], "--api", running.url)
    assert code == 1
    assert "only failed requests are re-run" in err


async def test_an_automation_reacts_to_a_failed_action(
    start_engine: StartEngine, hook: Receiver
) -> None:
    running = await start_engine(allow_private_urls=True, action_retries=0)
    hook.script(Reply(410, "gone"))
    watcher = {
        "name": "watch-actions",
        "trigger": {
            "type": "event",
            "expect": ["tripwire.action.failed"],
            "match_related": {
                "prefect.resource.role": "automation",
                "prefect.resource.name": "tell-ops",
            },
            "threshold": 1,
            "within": 0,
        },
        "actions": [
            {
                "type": "emit-event",
                "event": "ops.escalated",
                "resource": {"prefect.resource.id": "ops.{{ event.payload.action_type }}"},
                "payload": {"reason": "{{ event.payload.reason }}"},
            }
        ],
    }
    async with running.client() as client:
        for automation in (on_failure(hook.url()), watcher):
            answer = await client.post("/api/automations/", json=automation)
            assert answer.status_code == 201, answer.text
    await post(running, failed_run())

    await stored(running, named("ops.escalated"), 1)
    (escalated,) = (await running.engine.store.read(named("ops.escalated"))).events
    assert escalated.resource.id == "ops.call-webhook"
    assert "410" in escalated.payload["reason"]
    causes = [r for r in escalated.related if r.role == "tripwire-cause"]
    # tell-ops fired at depth 1, its failed event carried 1, watch-actions fired at 2
    assert [c["tripwire.cascade.depth"] for c in causes] == ["2"]


async def test_a_slow_target_does_not_hold_up_the_others(start_engine: StartEngine) -> None:
    running = await start_engine(allow_private_urls=True, action_timeout="20s")
    async with Receiver(Reply(200, "ok", hang=True)) as slow, Receiver(Reply(200, "ok")) as fast:
        async with running.client() as client:
            for name, hook in (("slow", slow), ("fast", fast)):
                automation = {**on_failure(hook.url()), "name": f"tell-{name}"}
                answer = await client.post("/api/automations/", json=automation)
                assert answer.status_code == 201, answer.text
        for _ in range(3):
            await post(running, failed_run())
        # Three calls hang at the slow target; the fast one gets all of its three anyway.
        await fast.wait_for(3)
        await slow.wait_for(3)
        done = await ledger_status(running, "succeeded", 3)
        assert {e["automation_name"] for e in done} == {"tell-fast"}
        stuck = await running.engine.acting.ledger.list(status="running")  # type: ignore[arg-type]
        assert {e["automation_name"] for e in stuck} == {"tell-slow"}


async def test_retries_in_backoff_do_not_hold_back_new_actions(
    start_engine: StartEngine, hook: Receiver
) -> None:
    # A nak'ed message waiting out its backoff still counts as unacknowledged in
    # JetStream: with two slots, two retries must not keep a third action waiting.
    running = await start_engine(
        allow_private_urls=True, action_concurrency=2, action_retry_delay="10m"
    )
    async with Receiver(Reply(503, "down")) as down:
        async with running.client() as client:
            for name, url in (("tell-down", down.url()), ("tell-ops", hook.url())):
                answer = await client.post("/api/automations/", json=on_failure(url, name=name))
                assert answer.status_code == 201, answer.text
        for _ in range(3):
            await post(running, failed_run())
        await down.wait_for(3)
        await hook.wait_for(3)
    retrying = await ledger_status(running, "retrying", 3)
    assert {e["automation_name"] for e in retrying} == {"tell-down"}
