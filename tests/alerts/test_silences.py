"""Silences, maintenance windows and inhibition in a running engine: what they cover is
recorded and shown, not notified; a resolved notice still follows a firing notice sent
before the silence; time moves through `run_due` and the clock seam."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from actions.ledger import Status
from events import clock
from events.model import Event
from tests.actions.receivers import Receiver, Reply
from tests.actions.test_live import named
from tests.alerts.test_live import alerts, create, fail_runs, on_failures
from tests.support import Running, StartEngine, eventually
from tests.triggers.conftest import flow_run
from tests.triggers.test_live import post, stored
from tests.tripwire.test_cli_automations import invoke


@pytest.fixture
async def slack() -> AsyncIterator[Receiver]:
    async with Receiver(Reply(200, "ok")) as receiver:
        yield receiver


async def apply(running: Running, **sections: Any) -> None:
    async with running.client() as client:
        answer = await client.post("/api/definitions/apply", json=sections)
    assert answer.status_code == 200, answer.text


async def test_a_silence_from_the_command_line_holds_notifications_until_it_expires(
    start_engine: StartEngine, slack: Receiver
) -> None:
    running = await start_engine(allow_private_urls=True)
    url = slack.url("/services/T1/B2/x")
    grouped = on_failures(url)
    plain = on_failures(url, name="etl-failures-plain")
    del plain["actions"][0]["grouping"]
    await create(running, grouped)
    await create(running, plain)
    api = ("--api", running.url)
    code, out, err = await invoke(
        "silence", "add", "--match", "automation=etl-*", "--match",
        "prefect.resource.id=prefect.flow-run.*", "--for", "2h",
        "--comment", "restoring the warehouse", "--by", "dana", *api,
    )  # fmt: skip
    assert code == 0, err
    silence_id = out.split()[1]
    assert out.startswith(f"silence {silence_id} active until ")

    await fail_runs(running, 3)
    opened = await alerts(running, 6, state="silenced")
    assert all(a["silenced_by"] == [f"silence {silence_id[:8]}"] for a in opened)
    pipeline = running.engine.pipeline
    now = clock.now()
    await pipeline.run_due(now + timedelta(seconds=4))
    ledger = running.engine.acting.ledger

    async def held() -> list[dict[str, Any]]:
        found = await ledger.list(status=Status.succeeded, automation="etl-failures-plain")
        return found if len(found) == 3 else []

    entries = await eventually(held, 15, "3 plain notifications held back")
    assert all(e["result"].startswith("not run: silenced by silence") for e in entries)
    assert slack.requests == []
    await stored(running, named("tripwire.alert.silenced"), 6)

    code, out, _ = await invoke("silence", "ls", *api)
    assert silence_id in out
    assert "restoring the warehouse" in out
    assert "dana" in out
    code, out, err = await invoke("silence", "expire", silence_id, *api)
    assert code == 0
    assert out.strip() == f"silence {silence_id} expired", err
    code, _, err = await invoke("silence", "expire", silence_id, *api)
    assert code == 1
    assert "ended already" in err
    code, out, _ = await invoke("silence", "ls", *api)
    assert out.strip() == "no silences: every alert notifies"

    await pipeline.run_due(now + timedelta(minutes=2))  # the group notifies now
    (message,) = await slack.wait_for(1)
    assert message.json()["text"] == "3 alerts firing: etl-failures"
    await fail_runs(running, 1)  # a firing's own message runs again at once
    own = (await slack.wait_for(2))[1]
    assert own.json()["text"].startswith("etl-failures-plain triggered")


async def test_a_resolved_notice_follows_a_firing_notice_sent_before_the_silence(
    start_engine: StartEngine, slack: Receiver
) -> None:
    running = await start_engine(allow_private_urls=True)
    await create(running, on_failures(slack.url("/services/T1/B2/x")))
    await fail_runs(running, 2)
    (first, second) = await alerts(running, 2)
    pipeline = running.engine.pipeline
    now = clock.now()
    await pipeline.run_due(now + timedelta(seconds=4))
    await slack.wait_for(1)
    async with running.client() as client:
        answer = await client.post(
            "/api/silences",
            json={"match": ["automation=etl-failures"], "for": "1d", "comment": "known"},
        )
        assert answer.status_code == 201, answer.text
    await pipeline.run_due(now + timedelta(hours=2))  # silenced: no repeat
    assert len(slack.requests) == 1
    for alert in (first, second):
        async with running.client() as client:
            answer = await client.post(f"/api/alerts/{alert['id']}/resolve", json={})
            assert answer.status_code == 200
    await pipeline.run_due(now + timedelta(hours=2, minutes=2))
    (_, resolved) = await slack.wait_for(2)
    assert resolved.json()["text"] == "2 alerts resolved: etl-failures"


async def test_a_maintenance_window_from_a_file_mutes_during_its_hours(
    start_engine: StartEngine, slack: Receiver
) -> None:
    running = await start_engine(allow_private_urls=True)
    window = {
        "name": "sunday-maintenance",
        "match": {"tags": "etl"},
        "schedule": {"cron": "0 2 * * SUN", "timezone": "Europe/Berlin", "duration": "3h"},
        "comment": "warehouse upkeep",
    }
    await apply(running, silences=[window], automations=[on_failures(slack.url("/x"))])
    # Sunday 2027-03-28 is the spring-forward day in Berlin: 02:00 is 03:00 CEST, 01:00 UTC.
    during = datetime(2027, 3, 28, 1, 30, tzinfo=UTC)
    after = datetime(2027, 3, 28, 4, 30, tzinfo=UTC)
    with clock.frozen_clock(during) as frozen:
        await post(running, flow_run("Failed", run="r1", when=during))
        (alert,) = await alerts(running, 1)
        async with running.client() as client:
            (listed,) = (await client.get("/api/alerts", params={"state": "silenced"})).json()
            windows = (await client.get("/api/silences")).json()
        assert listed["silenced_by"] == ["window sunday-maintenance"]
        assert windows[0]["state"] == "active"
        assert windows[0]["ends"] == "2027-03-28T04:00:00+00:00"
        await running.engine.pipeline.run_due(during + timedelta(seconds=4))
        assert slack.requests == []
        frozen.advance(after - during)
        await running.engine.pipeline.run_due(after)
    (message,) = await slack.wait_for(1)
    assert message.json()["text"] == "etl-failures firing"
    assert alert["labels"]["tags"] == ["etl"]


async def test_an_unreachable_prefect_server_inhibits_the_etl_alerts(
    start_engine: StartEngine, slack: Receiver
) -> None:
    running = await start_engine(allow_private_urls=True)
    url = slack.url("/services/T1/B2/x")
    unreachable = {
        "name": "prefect-server-unreachable",
        "trigger": {
            "type": "event",
            "expect": ["tripwire.source.disconnected"],
            "posture": "Reactive",
            "threshold": 1,
            "within": 0,
        },
        "actions": [{"type": "send-slack", "webhook_url": url, "grouping": {"wait": "3s"}}],
    }
    inhibit = [{"when": {"automation": "prefect-server-unreachable"}, "mute": {"tags": "etl"}}]
    await apply(running, inhibit=inhibit, automations=[unreachable, on_failures(url)])
    down = Event(
        occurred=clock.now(),
        event="tripwire.source.disconnected",
        resource={"prefect.resource.id": "tripwire.source.prefect"},
    )
    await post(running, down)
    (source,) = await alerts(running, 1)
    await fail_runs(running, 4)
    inhibited = await alerts(running, 4, state="inhibited")
    assert all(a["inhibited_by"] == [source["id"]] for a in inhibited)
    now = clock.now()
    await running.engine.pipeline.run_due(now + timedelta(seconds=4))
    (message,) = await slack.wait_for(1)
    assert message.json()["text"] == "prefect-server-unreachable firing"
    async with running.client() as client:
        await client.post(f"/api/alerts/{source['id']}/resolve", json={})
    # The etl group decides a minute on (its interval), the source's after five.
    await running.engine.pipeline.run_due(now + timedelta(minutes=6))
    messages = await slack.wait_for(3)
    texts = sorted(m.json()["text"] for m in messages)
    assert texts == [
        "4 alerts firing: etl-failures",
        *sorted(["prefect-server-unreachable firing", "prefect-server-unreachable resolved"]),
    ]


async def test_a_silence_refuses_what_it_cannot_mean(start_engine: StartEngine) -> None:
    running = await start_engine()
    async with running.client() as client:
        for body, words in (
            ({"match": [], "for": "1h", "comment": "x"}, "at least 1"),
            ({"match": ["automation"], "for": "1h", "comment": "x"}, "no operator"),
            ({"match": ["automation=x"], "comment": "x"}, "exactly one of ends, for"),
            ({"match": ["a=~("], "for": "1h", "comment": "x"}, "regular expression"),
            ({"match": ["a=b"], "for": "1h"}, "comment"),
        ):
            answer = await client.post("/api/silences", json=body)
            assert answer.status_code == 422, body
            assert words in answer.text, answer.text
        gone = await client.delete("/api/silences/nope")
        assert gone.status_code == 404
        assert "tripwire silence ls" in gone.text


async def test_until_resolved_and_actions_all(start_engine: StartEngine) -> None:
    running = await start_engine()
    emitting = on_failures("http://unused.invalid/")
    emitting["actions"] = [
        {
            "type": "emit-event",
            "event": "ops.restart-requested",
            "resource": {"prefect.resource.id": "ops.{{ event.resource.id }}"},
        }
    ]
    await create(running, emitting)
    async with running.client() as client:
        answer = await client.post(
            "/api/silences",
            json={
                "match": ["automation=etl-failures"],
                "until_resolved": True,
                "actions": "all",
                "comment": "hands off while we migrate",
            },
        )
        assert answer.status_code == 201, answer.text
        silence = answer.json()
    assert silence["ends"] is None
    await fail_runs(running, 1)
    (alert,) = await alerts(running, 1, state="silenced")
    ledger = running.engine.acting.ledger

    async def held() -> list[dict[str, Any]]:
        return await ledger.list(status=Status.succeeded, automation="etl-failures")

    (entry,) = await eventually(held, 15, "the emit-event held back")
    assert entry["result"] == f"not run: silenced by silence {silence['id'][:8]}"

    async with running.client() as client:
        await client.post(f"/api/alerts/{alert['id']}/resolve", json={})
    await running.engine.pipeline.run_due(clock.now())  # nothing it covers is open
    async with running.client() as client:
        listed = (await client.get("/api/silences", params={"all": "true"})).json()
    assert [s["state"] for s in listed] == ["expired"]
