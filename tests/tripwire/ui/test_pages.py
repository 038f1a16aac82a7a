"""The dashboard over real HTTP against a real engine: what each page shows, escaping,
sign-in, CSRF, read-only keys, and bad input answered with a 4xx naming the cause."""

from __future__ import annotations

import asyncio
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.support import Running, StartEngine, eventually
from tripwire.ui.alert_list import OPEN_FIRST, Cursor, alerts_page

HOSTILE = '<script>alert(1)</script>"onmouseover=alert(2)'

AUTOMATION = {
    "name": "loads-keep-failing",
    "description": "three failed loads in ten minutes",
    "trigger": {
        "type": "event",
        "match": {"prefect.resource.id": "load.*"},
        "expect": ["load.failed"],
        "for_each": ["prefect.resource.id"],
        "posture": "Reactive",
        "threshold": 3,
        "within": 600,
    },
    # Posting to a closed port fails at once: a failed action for the ledger.
    "actions": [{"type": "call-webhook", "url": "http://127.0.0.1:9/hook", "payload": "{}"}],
}

SLA = {
    "name": "orders-hourly",
    "kind": "duration",
    "start": ["orders.started"],
    "expect": ["orders.finished"],
    "within": "1h",
    "for_each": ["prefect.resource.id"],
}


def event(name: str, resource: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "occurred": datetime.now(UTC).isoformat(),
        "event": name,
        "resource": {"prefect.resource.id": resource},
        **extra,
    }


async def apply(http: httpx.AsyncClient, **definitions: Any) -> None:
    answer = await http.post("/api/definitions/apply", json=definitions)
    assert answer.status_code == 200, answer.text


async def test_pages_show_what_fired_and_why(start_engine: StartEngine, database_url: str) -> None:
    engine = await start_engine(database_url=database_url)
    async with engine.client() as http:
        await apply(http, automations=[AUTOMATION], slas=[SLA])
        failures = [event("load.failed", "load.sales") for _ in range(3)]
        started = event("orders.started", "orders.eu")
        assert (await http.post("/api/events", json=[*failures, started])).status_code == 202

        async def failed_action() -> bool:
            listed = (await http.get("/api/actions", params={"status": "failed"})).json()
            return bool(listed)

        await eventually(failed_action, 30, "the webhook action failed for good")

        overview = await http.get("/ui/")
        assert overview.status_code == 200
        assert "Healthy" in overview.text
        assert re.search(r'href="/ui/actions\?status=failed"><span class="value">1<', overview.text)

        listing = await http.get("/ui/automations")
        assert "3 load.failed within 10m, per resource" in listing.text
        assert 'aria-pressed="true"' in listing.text

        page = await http.get("/ui/automations/loads-keep-failing")
        assert page.status_code == 200
        assert "fired: 3 of 3 events within 10m" in page.text
        assert "call-webhook" in page.text  # the firing's action, and its outcome
        assert "failed" in page.text

        third = await http.get(f"/ui/events/{failures[2]['id']}")
        assert third.status_code == 200
        assert "loads-keep-failing" in third.text
        assert "fired: 3 of 3" in third.text

        slas = await http.get("/ui/slas")
        assert "orders-hourly" in slas.text
        assert "orders.eu" in slas.text
        assert "data-countdown=" in slas.text  # the next deadline counts down

        actions = await http.get("/ui/actions", params={"status": "failed"})
        assert "loads-keep-failing" in actions.text
        assert "/retry" in actions.text

        events = await http.get("/ui/events", params={"event": "load."})
        assert events.text.count('id="event-') == 3
        assert "orders.started" not in events.text
        # A filter the per-minute counts cannot answer: the histogram groups the events.
        by_resource = await http.get("/ui/events", params={"resource": "load.sales"})
        assert by_resource.text.count('id="event-') == 3
        assert "load.failed: 3 events from" in by_resource.text

        sla = await http.get("/ui/slas/orders-hourly")
        assert sla.status_code == 200
        assert "orders.eu" in sla.text


async def test_what_events_carry_is_escaped(engine: Running) -> None:
    hostile = event(
        "x." + HOSTILE,
        "res." + HOSTILE,
        related=[{"prefect.resource.id": "rel." + HOSTILE, "prefect.resource.role": HOSTILE}],
        payload={"note": HOSTILE},
    )
    async with engine.client() as http:
        assert (await http.post("/api/events", json=hostile)).status_code == 202
        await engine.wait_stored(1)
        for path in ("/ui/events", f"/ui/events/{hostile['id']}"):
            html = (await http.get(path)).text
            assert "<script>alert(1)" not in html
            assert '"onmouseover=alert' not in html
            assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


async def test_bad_filters_and_unknown_names_are_4xx(engine: Running) -> None:
    async with engine.client() as http:
        bad = await http.get("/ui/events", params={"since": "yesterday-ish"})
        assert bad.status_code == 400
        assert "since: &#39;yesterday-ish&#39; is neither a time" in bad.text
        backwards = await http.get("/ui/events", params={"since": "1h", "until": "2h"})
        assert backwards.status_code == 400
        assert "until: must be later than since" in backwards.text
        labels = await http.get("/ui/events", params={"labels": "no-equals-sign"})
        assert labels.status_code == 400
        assert "labels: write labels as name=value" in labels.text
        status = await http.get("/ui/actions", params={"status": "exploded"})
        assert status.status_code == 400
        assert "status: &#39;exploded&#39; is not one of" in status.text
        for path in ("/ui/automations/nope", "/ui/slas/nope", f"/ui/events/{uuid.uuid4()}"):
            assert (await http.get(path)).status_code == 404


async def test_changes_need_the_pages_csrf_token(engine: Running) -> None:
    async with engine.client() as http:
        await apply(http, automations=[AUTOMATION])
        forged = await http.post(
            "/ui/automations/loads-keep-failing/enabled", data={"enabled": "false"}
        )
        assert forged.status_code == 403
        assert "CSRF" in forged.text
        assert (await http.get("/api/automations/loads-keep-failing")).json()["enabled"] is True

        page = await http.get("/ui/automations")
        token = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
        assert token is not None
        paused = await http.post(
            "/ui/automations/loads-keep-failing/enabled",
            data={"enabled": "false", "csrf": token.group(1), "back": "https://elsewhere.example/"},
        )
        assert paused.status_code == 303
        assert paused.headers["location"] == "/ui/automations"  # never off the dashboard
        assert (await http.get("/api/automations/loads-keep-failing")).json()["enabled"] is False


async def test_replay_shows_what_would_have_fired(engine: Running) -> None:
    async with engine.client() as http:
        await apply(http, automations=[{**AUTOMATION, "actions": []}])
        failures = [event("load.failed", "load.eu") for _ in range(3)]
        await http.post("/api/events", json=failures)
        await engine.wait_stored(3)
        page = await http.get("/ui/automations/loads-keep-failing")
        token = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
        assert token is not None
        wrong = await http.post(
            "/ui/automations/loads-keep-failing/replay",
            data={"hours": "a lot", "csrf": token.group(1)},
        )
        assert "hours: give a whole number from 1 to 168" in wrong.text
        replayed = await http.post(
            "/ui/automations/loads-keep-failing/replay",
            data={"hours": "168", "csrf": token.group(1)},
        )
    assert replayed.status_code == 200
    assert "Replay of the last 168 hours: 1 firing over" in replayed.text


@pytest.fixture
async def guarded(start_engine: StartEngine) -> Running:
    return await start_engine(api_key="write-key", api_read_keys=["look-key"])


async def test_signing_in_and_read_only_keys(guarded: Running) -> None:
    async with guarded.client() as http:
        first = await http.get("/ui/automations")
        assert first.status_code == 303
        assert first.headers["location"] == "/ui/login?next=/ui/automations"
        wrong = await http.post("/ui/login", data={"secret": "guess", "next": "/ui/"})
        assert wrong.status_code == 401
        assert "not the API key" in wrong.text

        looked = await http.post("/ui/login", data={"secret": "look-key", "next": "/ui/slas"})
        assert looked.status_code == 303
        assert looked.headers["location"] == "/ui/slas"
        cookie = looked.headers["set-cookie"].lower()
        assert "httponly" in cookie
        assert "samesite=strict" in cookie
        page = await http.get("/ui/automations")
        assert page.status_code == 200
        assert "read-only" in page.text
        token = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
        assert token is not None
        refused = await http.post(
            "/ui/automations/anything/enabled", data={"enabled": "false", "csrf": token.group(1)}
        )
        assert refused.status_code == 403
        assert "read-only key" in refused.text

    # The API itself: a read-only key may GET, not change.
    read = {"Authorization": "Bearer look-key"}
    async with guarded.client(headers=read) as http:
        assert (await http.get("/api/automations")).status_code == 200
        assert (await http.get("/ui/")).status_code == 200
        refused_api = await http.post("/api/events", json=event("x.y", "z"))
        assert refused_api.status_code == 403
        assert "read only" in refused_api.json()["detail"]
    async with guarded.client() as http:
        assert (await http.get("/api/automations")).status_code == 401
        assert (await http.get("/ui/events/live")).status_code == 401
    async with guarded.client(headers={"Authorization": "Bearer write-key"}) as http:
        assert (await http.post("/api/events", json=event("x.y", "z"))).status_code == 202


async def test_root_redirects_to_the_dashboard(engine: Running) -> None:
    async with engine.client() as http:
        answer = await http.get("/")
        assert answer.status_code == 307
        assert answer.headers["location"] == "/ui/"
        assert "app;dur=" in answer.headers["server-timing"]
        css = await http.get("/ui/static/ui.css")
        assert css.status_code == 200
        assert "prefers-color-scheme: dark" in css.text


async def test_the_live_feed_brings_what_was_stored_while_the_page_loaded(
    engine: Running,
) -> None:
    async with engine.client() as http:
        first = event("feed.before", "r")
        await http.post("/api/events", json=first)
        await engine.wait_stored(1)
        page = await http.get("/ui/events")
        live = re.search(r'data-live="([^"]*)"', page.text)
        assert live is not None
        assert "stored=" in live.group(1)
        # Stored after the page read its events, before its feed connects.
        meanwhile = event("feed.meanwhile", "r")
        await http.post("/api/events", json=meanwhile)
        await engine.wait_stored(2)
        url = "/ui/events/live?" + live.group(1).replace("&amp;", "&")
        async with asyncio.timeout(10), http.stream("GET", url) as feed:
            assert feed.headers["content-type"].startswith("text/event-stream")
            async for line in feed.aiter_lines():
                if line.startswith("data: "):
                    assert meanwhile["id"] in line
                    assert first["id"] not in line
                    break


# Alerts --------------------------------------------------------------------------------

ALERTING: dict[str, Any] = {
    "name": "loads-alert",
    "description": "every failed load is an alert",
    "severity": "critical",
    "tags": ["etl", "on-call"],
    "trigger": {
        "type": "event",
        "match": {"prefect.resource.id": "load.*"},
        "expect": ["load.failed"],
        "for_each": ["prefect.resource.id"],
        "posture": "Reactive",
        "threshold": 1,
        "within": 0,
    },
    # Grouped and waiting an hour: the group is there to show, and nothing is sent.
    "actions": [
        {
            "type": "send-slack",
            "webhook_url": "http://127.0.0.1:9/services/T0/B0/x",
            "grouping": {"by": ["automation"], "wait": "1h"},
        }
    ],
}


async def alerts_of(http: httpx.AsyncClient, count: int, **params: str) -> list[dict[str, Any]]:
    """The alerts the API lists, once there are `count` of them."""

    async def listed() -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = (await http.get("/api/alerts", params=params)).json()
        return found if len(found) >= count else []

    return await eventually(listed, 15, f"{count} alerts {params}")


async def failed_loads(http: httpx.AsyncClient, *resources: str) -> list[dict[str, Any]]:
    """One alert per resource: firing, the API's listing in the order they were posted."""
    for resource in resources:  # one at a time: each fires after the one before
        answer = await http.post("/api/events", json=event("load.failed", resource))
        assert answer.status_code == 202
        await alerts_of(http, resources.index(resource) + 1)
    by_key = {a["key"]["prefect.resource.id"]: a for a in await alerts_of(http, len(resources))}
    return [by_key[r] for r in resources]


def csrf_of(html: str) -> str:
    token = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert token is not None
    return token.group(1)


async def test_alerts_list_open_ones_first_and_filter(engine: Running) -> None:
    async with engine.client() as http:
        await apply(http, automations=[ALERTING])
        quiet = await http.get("/ui/alerts")
        assert quiet.status_code == 200
        assert "No alerts: all quiet." in quiet.text
        fixed, handled, failing = await failed_loads(http, "load.a", "load.b", "load.c")
        assert (await http.post(f"/api/alerts/{fixed['id']}/resolve", json={})).status_code == 200
        acknowledged = await http.post(
            f"/api/alerts/{handled['id']}/acknowledge", json={"by": "dana", "for": "2h"}
        )
        assert acknowledged.status_code == 200

        listing = await http.get("/ui/alerts")
        assert listing.status_code == 200
        html = listing.text
        order = [html.index(f'href="/ui/alerts/{a["id"]}"') for a in (failing, handled, fixed)]
        assert order == sorted(order)  # firing, acknowledged, resolved
        assert html.count('href="/ui/automations/loads-alert"') == 3
        assert "resource: load.c" in html  # its key
        assert "load.failed on load.c" in html  # the summary
        assert "critical" in html
        assert "by dana" in html
        assert 'class="badge state-missed">firing<' in html
        assert 'class="badge state-at-risk">acknowledged<' in html
        assert 'class="badge state-ok">resolved<' in html

        firing = (await http.get("/ui/alerts", params={"state": "firing"})).text
        assert failing["id"] in firing
        assert handled["id"] not in firing
        assert fixed["id"] not in firing
        assert 'aria-current="page">firing<' in firing
        resolved = (await http.get("/ui/alerts", params={"state": "resolved"})).text
        assert fixed["id"] in resolved
        assert failing["id"] not in resolved
        named = (await http.get("/ui/alerts", params={"name": "loads-alert"})).text
        assert all(a["id"] in named for a in (fixed, handled, failing))
        other = (await http.get("/ui/alerts", params={"name": "loads"})).text
        assert "No alerts of loads: all quiet." in other  # a whole name, not a part

        bad = await http.get("/ui/alerts", params={"state": "open"})
        assert bad.status_code == 400
        assert "state: &#39;open&#39; is not one of firing, acknowledged, resolved" in bad.text

        overview = await http.get("/ui/")
        assert re.search(r'href="/ui/alerts\?state=firing"><span class="value">1<', overview.text)
        assert 'href="/ui/alerts">Alerts</a>' in overview.text  # the nav


async def test_alerts_page_on_across_states(start_engine: StartEngine, database_url: str) -> None:
    """Page after page, however small: every alert once, open ones first, even when
    several fired at the same moment."""
    engine = await start_engine(database_url=database_url)
    async with engine.client() as http:
        await apply(http, automations=[ALERTING])
        at = datetime.now(UTC).isoformat()
        loads = [{**event("load.failed", f"load.{n}"), "occurred": at} for n in "abcde"]
        assert (await http.post("/api/events", json=loads)).status_code == 202
        alerts = await alerts_of(http, len(loads))
        assert len({a["last_fired"] for a in alerts}) == 1  # a tie, for the keyset
        await http.post(f"/api/alerts/{alerts[0]['id']}/resolve", json={})
        await http.post(f"/api/alerts/{alerts[1]['id']}/acknowledge", json={})
        states = {a["id"]: a["state"] for a in await alerts_of(http, len(loads))}

        page = (await http.get("/ui/alerts")).text
        listed = re.findall(r'href="/ui/alerts/([0-9a-f-]{36})"', page)
        assert sorted(listed) == sorted(states)
        shown = [states[i] for i in listed]
        assert shown == ["firing"] * 3 + ["acknowledged", "resolved"]
        assert ">Next →<" not in page  # one page holds them all

        for limit in (1, 2):
            walked: list[str] = []
            cursor = None
            while True:
                found, cursor = await alerts_page(
                    engine.engine.alerts, OPEN_FIRST, name=None, cursor=cursor, limit=limit
                )
                walked += [a.id for a in found]
                if cursor is None:
                    break
                cursor = Cursor.parse(cursor.text())  # as the "Next" link carries it
            assert walked == listed
        after_first = f"{shown[0]}|{at}|{listed[0]}"
        rest = (await http.get("/ui/alerts", params={"before": after_first})).text
        assert re.findall(r'href="/ui/alerts/([0-9a-f-]{36})"', rest) == listed[1:]


async def test_an_alert_shows_labels_firings_and_groups(engine: Running) -> None:
    async with engine.client() as http:
        await apply(http, automations=[ALERTING])
        (alert,) = await failed_loads(http, "load.a")
        shown = (await http.get(f"/api/alerts/{alert['id']}")).json()
        page = await http.get(f"/ui/alerts/{alert['id']}")
    assert page.status_code == 200
    html = page.text
    assert "load.failed on load.a" in html
    assert '<a href="/ui/automations/loads-alert">loads-alert</a>' in html
    assert "<dt>tags</dt><dd>etl, on-call</dd>" in html  # a list, joined
    assert "<dt>severity</dt><dd>critical</dd>" in html
    assert "<dt>automation</dt><dd>loads-alert</dd>" in html  # a label, as all of them
    (firing,) = shown["firings"]
    assert f'href="/ui/events/{firing["event_id"]}"' in html
    assert "send-slack" in html  # its group: the action, its grouping, nothing sent yet
    assert "automation: loads-alert" in html
    assert "none yet" in html
    assert '<dt>acknowledged</dt><dd><span class="note">not yet</span>' in html
    assert 'action="/ui/alerts/' + alert["id"] + '/acknowledge"' in html
    assert 'action="/ui/alerts/' + alert["id"] + '/resolve"' in html


async def test_silenced_and_inhibited_alerts_say_so(engine: Running) -> None:
    async with engine.client() as http:
        await apply(
            http,
            automations=[ALERTING],
            inhibit=[{"when": {"prefect.resource.id": "load.a"}, "mute": {"tags": "etl"}}],
        )
        source, muted = await failed_loads(http, "load.a", "load.b")
        silence = await http.post(
            "/api/silences",
            json={"match": ["prefect.resource.id=load.b"], "for": "1h", "comment": "known"},
        )
        assert silence.status_code == 201
        listing = (await http.get("/ui/alerts")).text
        silenced = (await http.get(f"/ui/alerts/{muted['id']}")).text
        inhibited = (await http.get(f"/ui/alerts/{source['id']}")).text
    assert listing.count('<span class="sub">silenced</span>') == 1
    assert f"<dt>silenced</dt><dd>by silence {silence.json()['id'][:8]}" in silenced
    assert f'href="/ui/alerts/{source["id"]}"' in silenced  # inhibited by the source too
    assert "<dt>silenced</dt>" not in inhibited  # the source is neither
    assert "<dt>inhibited</dt>" not in inhibited


async def test_acknowledge_and_resolve_from_the_alert_page(engine: Running) -> None:
    async with engine.client() as http:
        await apply(http, automations=[ALERTING])
        (alert,) = await failed_loads(http, "load.a")
        path = f"/ui/alerts/{alert['id']}"
        token = csrf_of((await http.get(path)).text)

        forged = await http.post(path + "/acknowledge", data={"for": "2h"})
        assert forged.status_code == 403
        assert "CSRF" in forged.text
        wrong = await http.post(path + "/acknowledge", data={"for": "a while", "csrf": token})
        assert wrong.status_code == 400
        assert "for: &#39;a while&#39; is not a duration" in wrong.text
        assert 'value="a while"' in wrong.text  # what was typed, kept
        assert (await http.get(f"/api/alerts/{alert['id']}")).json()["state"] == "firing"

        acknowledged = await http.post(
            path + "/acknowledge",
            data={"for": "2h", "comment": "restarting the warehouse", "csrf": token},
        )
        assert acknowledged.status_code == 303
        assert acknowledged.headers["location"] == path
        shown = (await http.get(f"/api/alerts/{alert['id']}")).json()
        assert shown["state"] == "acknowledged"
        assert shown["acknowledged_by"] == "dashboard"
        assert shown["comment"] == "restarting the warehouse"
        until = datetime.fromisoformat(shown["acknowledged_until"])
        assert abs(until - datetime.now(UTC) - timedelta(hours=2)) < timedelta(minutes=1)
        page = (await http.get(path)).text
        assert "restarting the warehouse" in page
        assert "then it fires again if still open" in page

        async def published() -> bool:  # delivered: the alert's event is stored
            found = await http.get("/ui/events", params={"event": "tripwire.alert.acknowledged"})
            return 'id="event-' in found.text

        await eventually(published, 15, "the acknowledged event published")

        resolved = await http.post(path + "/resolve", data={"comment": "fixed", "csrf": token})
        assert resolved.status_code == 303
        assert resolved.headers["location"] == path
        shown = (await http.get(f"/api/alerts/{alert['id']}")).json()
        assert shown["state"] == "resolved"
        assert shown["resolved_by"] == "hand (dashboard)"
        page = (await http.get(path)).text
        assert "hand (dashboard)" in page
        assert 'action="' + path + '/resolve"' not in page  # nothing left to do

        again = await http.post(path + "/resolve", data={"csrf": token})
        assert again.status_code == 409
        assert "nothing to change" in again.text
        late = await http.post(path + "/acknowledge", data={"csrf": token})
        assert late.status_code == 409

        missing = f"/ui/alerts/{uuid.uuid4()}"
        assert (await http.get(missing)).status_code == 404
        assert (await http.post(missing + "/acknowledge", data={"csrf": token})).status_code == 404
        assert (await http.post(missing + "/resolve", data={"csrf": token})).status_code == 404


async def test_read_only_keys_see_alerts_and_cannot_change_them(guarded: Running) -> None:
    async with guarded.client(headers={"Authorization": "Bearer write-key"}) as http:
        await apply(http, automations=[ALERTING])
        (alert,) = await failed_loads(http, "load.a")
    path = f"/ui/alerts/{alert['id']}"
    async with guarded.client() as http:
        await http.post("/ui/login", data={"secret": "look-key", "next": path})
        page = await http.get(path)
        assert page.status_code == 200
        assert page.text.count('disabled title="read-only"') == 2  # acknowledge, resolve
        token = csrf_of(page.text)
        for change in ("/acknowledge", "/resolve"):
            refused = await http.post(path + change, data={"csrf": token})
            assert refused.status_code == 403
            assert "read-only key" in refused.text
    async with guarded.client(headers={"Authorization": "Bearer write-key"}) as http:
        assert (await http.get(f"/api/alerts/{alert['id']}")).json()["state"] == "firing"


async def test_what_alerts_carry_is_escaped(engine: Running) -> None:
    hostile = {
        **ALERTING,
        "name": "alert " + HOSTILE,
        "tags": [HOSTILE],
        "trigger": {**ALERTING["trigger"], "match": {}},
    }
    async with engine.client() as http:
        await apply(http, automations=[hostile])
        sent = event("load.failed", "load." + HOSTILE)
        sent["resource"]["prefect.resource.name"] = HOSTILE
        sent["resource"]["label." + HOSTILE] = HOSTILE
        assert (await http.post("/api/events", json=sent)).status_code == 202
        (alert,) = await alerts_of(http, 1)
        for path in ("/ui/alerts", f"/ui/alerts/{alert['id']}"):
            html = (await http.get(path)).text
            assert "<script>alert(1)" not in html
            assert '"onmouseover=alert' not in html
            assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
