"""Alerts in a running engine: a burst of failures becomes one grouped Slack message and
one resolved notice; acknowledgement stops repeats; resolve_after and resolving by hand;
a restart while a group waits sends it once. Time moves through `run_due`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from events import clock
from tests.actions.receivers import Receiver, Reply
from tests.support import Running, StartEngine, eventually
from tests.triggers.conftest import flow_run
from tests.triggers.test_live import post
from tests.tripwire.test_cli_automations import invoke


def on_failures(url: str, **extra: Any) -> dict[str, Any]:
    """Every failed flow run is its own alert; Slack hears of them grouped."""
    return {
        "name": "etl-failures",
        "severity": "critical",
        "tags": ["etl"],
        "trigger": {
            "type": "event",
            "match": {"prefect.resource.id": "prefect.flow-run.*"},
            "expect": ["prefect.flow-run.Failed"],
            "for_each": ["prefect.resource.id"],
            "posture": "Reactive",
            "threshold": 1,
            "within": 0,
        },
        "actions": [
            {
                "type": "send-slack",
                "webhook_url": url,
                "grouping": {"by": ["automation"], "wait": "3s", "interval": "1m", "repeat": "1h"},
            }
        ],
        **extra,
    }


@pytest.fixture
async def slack() -> AsyncIterator[Receiver]:
    async with Receiver(Reply(200, "ok")) as receiver:
        yield receiver


async def create(running: Running, automation: dict[str, Any]) -> None:
    async with running.client() as client:
        answer = await client.post("/api/automations/", json=automation)
    assert answer.status_code == 201, answer.text


async def alerts(running: Running, count: int, **params: str) -> list[dict[str, Any]]:
    async def listed() -> list[dict[str, Any]]:
        async with running.client() as client:
            found: list[dict[str, Any]] = (await client.get("/api/alerts", params=params)).json()
        return found if len(found) >= count else []

    found = await eventually(listed, 15, f"{count} alerts {params}")
    assert len(found) == count
    return found


async def fail_runs(running: Running, count: int) -> None:
    start = clock.now()
    await post(
        running,
        *[
            flow_run("Failed", run=f"run-{i}", when=start + timedelta(seconds=2 * i / count))
            for i in range(count)
        ],
    )


async def test_a_burst_of_failures_is_one_message_and_one_resolved_notice(
    start_engine: StartEngine, slack: Receiver
) -> None:
    running = await start_engine(allow_private_urls=True)
    await create(running, on_failures(slack.url("/services/T1/B2/x"), resolve_after="10m"))
    await fail_runs(running, 30)
    opened = await alerts(running, 30, state="firing")
    assert {a["labels"]["automation"] for a in opened} == {"etl-failures"}
    assert all(a["severity"] == "critical" and a["labels"]["tags"] == ["etl"] for a in opened)
    assert slack.requests == []  # nothing before `wait`

    pipeline = running.engine.pipeline
    now = clock.now()
    await pipeline.run_due(now + timedelta(seconds=4))
    (message,) = await slack.wait_for(1)
    body = message.json()
    assert body["text"] == "30 alerts firing: etl-failures"
    section = body["blocks"][1]["text"]["text"]
    assert section.count(":red_circle:") == 10
    assert "… and 20 more" in section
    await pipeline.run_due(now + timedelta(seconds=30))  # unchanged, repeat not due
    assert len(slack.requests) == 1

    await pipeline.run_due(now + timedelta(minutes=11))  # resolve_after ran out for all
    await alerts(running, 30, state="resolved")
    (_, resolved) = await slack.wait_for(2)
    assert resolved.json()["text"] == "30 alerts resolved: etl-failures"
    assert ":white_check_mark:" in resolved.json()["blocks"][0]["text"]["text"]
    await pipeline.run_due(now + timedelta(hours=5))
    ledger = await running.engine.acting.ledger.list(automation="etl-failures")
    assert len(ledger) == 2
    assert len(slack.requests) == 2


async def test_acknowledged_alerts_are_not_repeated_and_resolve_by_hand(
    start_engine: StartEngine, slack: Receiver
) -> None:
    running = await start_engine(allow_private_urls=True)
    await create(running, on_failures(slack.url("/services/T1/B2/x")))
    await fail_runs(running, 1)
    (alert,) = await alerts(running, 1)
    pipeline = running.engine.pipeline
    now = clock.now()
    await pipeline.run_due(now + timedelta(seconds=4))
    (first,) = await slack.wait_for(1)
    assert first.json()["text"] == "etl-failures firing"

    await pipeline.run_due(now + timedelta(hours=1, seconds=5))  # repeat
    await slack.wait_for(2)
    async with running.client() as client:
        answer = await client.post(
            f"/api/alerts/{alert['id']}/acknowledge",
            json={"by": "dana", "comment": "restarting the warehouse"},
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["state"] == "acknowledged"
    await pipeline.run_due(now + timedelta(hours=3))  # no repeat while acknowledged
    assert len(slack.requests) == 2

    async with running.client() as client:
        answer = await client.post(f"/api/alerts/{alert['id']}/resolve", json={"by": "dana"})
        assert answer.status_code == 200, answer.text
        again = await client.post(f"/api/alerts/{alert['id']}/resolve", json={})
        assert again.status_code == 409
        assert "resolved" in again.json()["detail"]
        missing = await client.post("/api/alerts/nope/acknowledge", json={})
        assert missing.status_code == 404
        shown = (await client.get(f"/api/alerts/{alert['id']}")).json()
    assert shown["resolved_by"] == "hand (dana)"
    assert [f["state"] for f in shown["firings"]] == ["triggered"]
    await pipeline.run_due(now + timedelta(hours=3, minutes=2))
    (*_, resolved) = await slack.wait_for(3)
    assert resolved.json()["text"] == "etl-failures resolved"


async def test_a_restart_while_a_group_waits_sends_it_once(
    start_engine: StartEngine, slack: Receiver, database_url: str
) -> None:
    first = await start_engine(allow_private_urls=True, database_url=database_url)
    await create(first, on_failures(slack.url("/services/T1/B2/x")))
    await fail_runs(first, 5)
    await alerts(first, 5)
    await first.stop()

    second = await start_engine(allow_private_urls=True, database_url=database_url)
    now = clock.now()
    await second.engine.pipeline.run_due(now + timedelta(seconds=4))
    (message,) = await slack.wait_for(1)
    assert message.json()["text"] == "5 alerts firing: etl-failures"
    await second.engine.pipeline.run_due(now + timedelta(seconds=5))
    assert len(slack.requests) == 1


async def test_ungrouped_actions_still_run_once_per_firing(
    start_engine: StartEngine, slack: Receiver
) -> None:
    running = await start_engine(allow_private_urls=True)
    automation = on_failures(slack.url("/services/T1/B2/x"))
    del automation["actions"][0]["grouping"]
    await create(running, automation)
    await fail_runs(running, 3)
    messages = await slack.wait_for(3)
    assert all("etl-failures triggered" in m.json()["text"] for m in messages)
    await alerts(running, 3)  # alerts are recorded all the same


async def test_alerts_from_the_command_line(start_engine: StartEngine, slack: Receiver) -> None:
    running = await start_engine(allow_private_urls=True)
    await create(running, on_failures(slack.url("/services/T1/B2/x")))
    await fail_runs(running, 2)
    first, _ = await alerts(running, 2)
    api = ("--api", running.url)

    code, out, err = await invoke("alerts", "ls", "--state", "firing", *api)
    assert code == 0, err
    header, *rows = out.splitlines()
    assert header.split()[:4] == ["ID", "STATE", "SEVERITY", "NAME"]
    assert len(rows) == 2
    assert all("etl-failures" in r and "critical" in r for r in rows)

    code, out, err = await invoke(
        "alerts", "ack", first["id"], "--for", "2h", "--comment", "on it", "--by", "dana", *api
    )
    assert code == 0, err
    assert out.startswith("acknowledged etl-failures (prefect.resource.id=prefect.flow-run.")
    assert "until" in out
    code, out, _ = await invoke("alerts", "show", first["id"], *api)
    assert "acknowledged" in out
    assert "by dana" in out
    assert "comment      on it" in out
    assert "send-slack" in out  # its notification group

    code, out, _ = await invoke("alerts", "resolve", first["id"], *api)
    assert code == 0
    assert out.startswith("resolved etl-failures")
    code, _, err = await invoke("alerts", "resolve", first["id"], *api)
    assert code == 1
    assert "resolved at" in err
    assert "nothing to change" in err
    code, _, err = await invoke("alerts", "ls", "--state", "open", *api)
    assert code == 2
    words = " ".join(err.replace("│", " ").split())  # rich boxes and wraps the message
    assert "firing, acknowledged, resolved, silenced, inhibited" in words
    code, out, _ = await invoke("alerts", "ls", "--state", "acknowledged", *api)
    assert out.strip() == "no alerts acknowledged: all quiet"


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_two_workers_on_postgresql_send_a_grouped_message_once(
    start_engine: StartEngine, slack: Receiver, database_url: str
) -> None:
    first = await start_engine(allow_private_urls=True, database_url=database_url)
    second = await start_engine(allow_private_urls=True, database_url=database_url)
    await create(first, on_failures(slack.url("/services/T1/B2/x")))
    await second.engine.pipeline.reload(force=True)
    await fail_runs(first, 20)  # both workers share the store consumer: each takes some
    await alerts(first, 20)
    now = clock.now()
    for delay in (4, 5, 6):  # both timers decide at once, again and again
        at = now + timedelta(seconds=delay)
        await asyncio.gather(first.engine.pipeline.run_due(at), second.engine.pipeline.run_due(at))
    (message,) = await slack.wait_for(1)
    assert message.json()["text"] == "20 alerts firing: etl-failures"
    ledger = await first.engine.acting.ledger.list(automation="etl-failures")
    assert len(ledger) == 1
    assert len(slack.requests) == 1
