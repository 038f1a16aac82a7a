"""Following a real Prefect server (PyPI `prefect` 3.8 in .venv-prefect): real flows run
there, one that succeeds and one that fails, and their prefect.flow-run.* events arrive in
tripwire unchanged; the server restarts in the middle and nothing is lost or doubled;
tripwire restarts and resumes; a server with an auth string is followed with it.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

import events.follower
import events.prefect_stream
from events import clock
from events.filters import EventFilter, EventNameFilter, EventOccurredFilter, EventOrder
from events.follower import PrefectFollower, Timing
from events.model import Event, ReceivedEvent
from tests.events.prefect_follow_server import PYTHON, SCRIPTS, RestartablePrefect, prefect_env
from tests.support import Running, StartEngine, eventually

# Each Prefect server start takes 10-20 s, more on a busy machine.
pytestmark = [pytest.mark.prefect, pytest.mark.slow, pytest.mark.timeout(180)]

FLOW_RUNS = "prefect.flow-run."
FAST = Timing(first_retry=0.2, max_retry=3.0, persist_delay=1.0)


async def follow(
    start_engine: StartEngine, server: RestartablePrefect, state: str = "connected", **settings: Any
) -> Running:
    """An engine following the server's flow-run events, in `state`."""
    running = await start_engine(
        prefect_api_url=server.url,
        prefect_follow=True,
        prefect_follow_events=[FLOW_RUNS + "*"],
        **settings,
    )
    follower(running).timing = FAST  # retry and catch up sooner than in production
    await wait_for_state(running, state)
    return running


def follower(running: Running) -> PrefectFollower:
    [only] = running.engine.followers
    return only


async def source_health(running: Running) -> dict[str, Any]:
    async with running.client() as http:
        report = (await http.get("/api/health")).json()
    [source] = report["sources"]
    assert isinstance(source, dict)
    return source


async def wait_for_state(running: Running, state: str, timeout: float = 30.0) -> dict[str, Any]:
    async def reached() -> dict[str, Any] | None:
        source = await source_health(running)
        return source if source["state"] == state else None

    return await eventually(reached, timeout, f"the source {state}")


async def run_flows(
    server: RestartablePrefect,
    home: Path,
    outcomes: list[str],
    on_report: Any = None,
    env: dict[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Run real flows with Prefect's client; one report per run (see run_flows.py)."""
    process = await asyncio.create_subprocess_exec(
        str(PYTHON),
        str(SCRIPTS / "run_flows.py"),
        json.dumps(outcomes),
        env={**prefect_env(home, server.url), **(env or {})},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    assert process.stderr is not None
    stderr = asyncio.create_task(process.stderr.read())
    reports: list[dict[str, Any]] = []
    try:
        while line := await process.stdout.readline():
            reports.append(json.loads(line))
            if on_report is not None:
                await on_report(reports)
        code = await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert code == 0, f"run_flows.py failed ({code}):\n{(await stderr).decode()[-3000:]}"
    return reports


async def prefect_events(
    server: RestartablePrefect, since: datetime, auth: tuple[str, str] | None = None
) -> dict[str, Event]:
    """The flow-run events the Prefect server itself stored since `since`, by id."""
    body = {
        "filter": {
            "occurred": {"since": since.isoformat(), "until": clock.now().isoformat()},
            "event": {"prefix": [FLOW_RUNS]},
        },
        "limit": 50,
    }
    found: dict[str, Event] = {}
    async with httpx.AsyncClient(timeout=10, auth=auth) as http:
        response = await http.post(f"{server.url}/events/filter", json=body)
        while True:
            response.raise_for_status()
            page = response.json()
            for data in page["events"]:
                found[data["id"]] = Event.model_validate(data)
            if not page.get("next_page"):
                return found
            response = await http.get(page["next_page"])


async def stored(running: Running, since: datetime | None = None) -> dict[str, ReceivedEvent]:
    flt = EventFilter(
        event=EventNameFilter(prefix=[FLOW_RUNS]),
        occurred=EventOccurredFilter(since=since),
        order=EventOrder.ASC,
    )
    page = await running.engine.store.read(flt, 1000)
    assert page.next_token is None, "more events than one page: raise the limit"
    return {str(e.id): e for e in page.events}


async def wait_until_all_arrived(
    running: Running,
    server: RestartablePrefect,
    since: datetime,
    expected_runs: set[str],
    auth: tuple[str, str] | None = None,
) -> tuple[dict[str, Event], dict[str, ReceivedEvent]]:
    """Poll both sides until tripwire holds every flow-run event the server stored for
    the runs, and the server has stored each run's final state."""
    theirs: dict[str, Event] = {}
    ours: dict[str, ReceivedEvent] = {}
    finished: set[str] = set()
    try:
        async with asyncio.timeout(30):
            while True:
                theirs = await prefect_events(server, since, auth)
                ours = await stored(running, since)
                finished = {
                    e.resource.id.removeprefix(FLOW_RUNS)
                    for e in theirs.values()
                    if e.event in (FLOW_RUNS + "Completed", FLOW_RUNS + "Failed")
                }
                if expected_runs <= finished and set(theirs) <= set(ours):
                    return theirs, ours
                await asyncio.sleep(0.2)
    except TimeoutError:
        missing = sorted((theirs[i].event, theirs[i].resource.id) for i in set(theirs) - set(ours))
        pytest.fail(
            f"after 30s: {len(missing)} of the server's {len(theirs)} events missing in "
            f"tripwire ({missing[:5]}...); runs not finished there: {expected_runs - finished}"
        )


def unchanged(ours: ReceivedEvent, theirs: Event) -> None:
    """Every field Prefect set arrived as Prefect set it; `received` is tripwire's."""
    assert ours.model_dump(exclude={"received"}) == theirs.model_dump()


async def test_flow_run_events_arrive_with_prefects_ids_labels_and_related(
    start_engine: StartEngine, restartable_prefect: RestartablePrefect, tmp_path: Path
) -> None:
    running = await follow(start_engine, restartable_prefect)
    since = clock.now()
    reports = await run_flows(restartable_prefect, tmp_path, ["ok", "fail"])
    assert [(r["outcome"], r.get("state")) for r in reports] == [
        ("ok", "COMPLETED"),
        ("fail", "FAILED"),
    ]
    ok, failed = (r["flow_run_id"] for r in reports)
    theirs, ours = await wait_until_all_arrived(running, restartable_prefect, since, {ok, failed})

    assert set(ours) == set(theirs)
    for event_id, event in theirs.items():
        unchanged(ours[event_id], event)
        assert ours[event_id].received >= since
    names = {(e.resource.id, e.event) for e in ours.values()}
    assert (FLOW_RUNS + ok, FLOW_RUNS + "Completed") in names
    assert (FLOW_RUNS + failed, FLOW_RUNS + "Failed") in names
    [failure] = [e for e in ours.values() if e.event == FLOW_RUNS + "Failed"]
    assert failure.resource["prefect.state-type"] == "FAILED"
    assert "fails on purpose" in failure.resource["prefect.state-message"]
    assert failure.follows is not None  # the Running event it follows
    [flow] = failure.resources_in_role("flow")
    assert flow.name == "follow-fail"
    assert flow.id.startswith("prefect.flow.")
    # Only what the glob names: the client's task-run or log events are not followed.
    everything = await running.engine.store.read(EventFilter(), 1000)
    assert {e.event.split(".")[0] + "." + e.event.split(".")[1] for e in everything.events} <= {
        "prefect.flow-run",
        "tripwire.source",
    }


async def test_a_server_restart_in_the_middle_loses_and_doubles_nothing(
    start_engine: StartEngine,
    restartable_prefect: RestartablePrefect,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = restartable_prefect
    # Hold the follower back after the restart until flows have run without it, so that
    # only resuming (backfill, catch-up) can bring their events.
    may_connect = asyncio.Event()
    may_connect.set()
    subscribe = events.prefect_stream.subscribe

    async def held_back(*args: Any, **kwargs: Any) -> Any:
        await may_connect.wait()
        return await subscribe(*args, **kwargs)

    monkeypatch.setattr(events.follower, "subscribe", held_back)
    running = await follow(start_engine, server)
    since = clock.now()
    down: dict[str, Any] = {}

    async def restart_after_three(reports: list[dict[str, Any]]) -> None:
        if len(reports) == 3:
            # Flows keep being run meanwhile: the script waits for the server and goes on.
            may_connect.clear()
            await asyncio.to_thread(server.stop)
            down.update(await wait_for_state(running, "reconnecting"))
            await asyncio.to_thread(server.start)
        elif len(reports) == 7:
            may_connect.set()

    outcomes = ["ok", "fail"] * 6
    reports = await run_flows(server, tmp_path, outcomes, restart_after_three)
    assert may_connect.is_set()
    assert server.starts >= 2
    finished = {r["flow_run_id"] for r in reports if "state" in r}
    assert len(finished) >= 9, reports  # at most the run cut by the stop did not finish
    theirs, ours = await wait_until_all_arrived(running, server, since, finished)

    assert set(ours) == set(theirs), "tripwire and the Prefect server disagree"
    for event_id, event in theirs.items():
        unchanged(ours[event_id], event)
    # Nothing twice: each followed event was published once and is one message on the bus.
    source = await wait_for_state(running, "connected")
    everything = await stored(running)
    assert source["forwarded"] == len(everything)
    info = await running.engine.bus.js.stream_info(running.engine.bus.names.events_stream)
    assert info.state.messages == await running.engine.store.count()

    # The outage is visible: in /api/health while it lasted, and as events on the bus.
    assert down["last_error"]
    assert down["connected_since"] is None
    assert source["reconnects"] >= 1
    assert source["last_event"]["id"] in ours
    announcements = await running.engine.store.read(
        EventFilter(event=EventNameFilter(prefix=["tripwire.source."]), order=EventOrder.ASC),
        100,
    )
    kinds = [e.event for e in announcements.events]
    assert kinds[:3] == [
        "tripwire.source.connected",
        "tripwire.source.disconnected",
        "tripwire.source.connected",
    ]
    lost = announcements.events[1]
    assert lost.resource.id == "tripwire.source.prefect"
    assert lost.payload["api_url"] == server.url
    assert lost.payload["reason"]


async def test_a_restarted_engine_resumes_from_the_newest_stored_event(
    start_engine: StartEngine, restartable_prefect: RestartablePrefect, tmp_path: Path
) -> None:
    first = await follow(start_engine, restartable_prefect)
    since = clock.now()
    [before] = await run_flows(restartable_prefect, tmp_path, ["ok"])
    await wait_until_all_arrived(first, restartable_prefect, since, {before["flow_run_id"]})
    await first.stop()

    # Flows run while tripwire is down; the next engine (same store, same bus) resumes.
    [meanwhile] = await run_flows(restartable_prefect, tmp_path, ["fail"])
    newest = max(e.occurred for e in (await stored(first)).values())
    await first.engine.db.dispose()  # reading the stopped engine's store connected again
    second = await follow(start_engine, restartable_prefect)
    expected = {before["flow_run_id"], meanwhile["flow_run_id"]}
    theirs, ours = await wait_until_all_arrived(second, restartable_prefect, since, expected)
    assert set(ours) == set(theirs)
    source = await source_health(second)
    assert source["resumed_from"] == (newest - FAST.overlap).isoformat()


async def test_a_server_with_an_auth_string_is_followed_with_it(
    start_engine: StartEngine, tmp_path: Path
) -> None:
    server = RestartablePrefect(tmp_path / "server", {"PREFECT_SERVER_API_AUTH_STRING": "ad:min"})
    server.home.mkdir()
    await asyncio.to_thread(server.start)
    try:
        wrong = await follow(start_engine, server, "reconnecting", prefect_api_auth_string="x:y")
        assert "authentication failed" in (await source_health(wrong))["last_error"]

        running = await follow(start_engine, server, prefect_api_auth_string="ad:min")
        since = clock.now()
        [report] = await run_flows(
            server, tmp_path, ["ok"], env={"PREFECT_API_AUTH_STRING": "ad:min"}
        )
        await wait_until_all_arrived(
            running, server, since, {report["flow_run_id"]}, auth=("ad", "min")
        )
    finally:
        await asyncio.to_thread(server.stop)
