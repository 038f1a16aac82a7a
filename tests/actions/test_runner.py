"""The runner and its ledger on a real database: claims, retries with backoff, the dead
letter, re-runs, lifecycle events, and at-most-once after success."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from actions.executors import EXECUTORS
from actions.ledger import Ledger, Record, Status
from actions.runner import ActionRunner, RetryPolicy
from actions.templating import Templates
from events import clock
from events.embedded import free_port
from events.errors import BusUnavailable
from events.model import Event
from events.secrets import Secrets
from tests.actions.conftest import AllowAll, Recorder, request_for
from tripwire.database import create_engine, migrate
from tripwire.settings import Settings

START = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)


@pytest.fixture
async def ledger(database_url: str) -> AsyncIterator[Ledger]:
    db = create_engine(database_url)
    await migrate(db)
    yield Ledger(db)
    await db.dispose()


@pytest.fixture
async def runner(ledger: Ledger, recorder: Recorder) -> AsyncIterator[ActionRunner]:
    async with httpx.AsyncClient(timeout=2) as http:
        yield ActionRunner(
            ledger=ledger,
            executors=EXECUTORS,
            templates=Templates(Secrets(environ={"TOKEN": "s3cr3t-token"})),
            http=http,
            guard=AllowAll(),
            emit=recorder.emit,
            automations=recorder,
            policy=RetryPolicy(retries=2, retry_delay=timedelta(seconds=4)),
        )


def names(recorder: Recorder) -> list[str]:
    return [e.event for e in recorder.emitted]


def closed_port_webhook(**extra: Any) -> dict[str, Any]:
    # Nothing listens there: a real connection refusal, a transient failure.
    return {"type": "call-webhook", "url": f"http://127.0.0.1:{free_port()}/hook", **extra}


async def test_a_success_is_recorded_once_and_a_redelivery_does_not_act_again(
    runner: ActionRunner, ledger: Ledger, recorder: Recorder
) -> None:
    request = request_for(
        {
            "type": "emit-event",
            "event": "etl.noticed",
            "resource": {"prefect.resource.id": "etl.{{ automation.name }}"},
        }
    )
    assert await runner.run(request) is None
    assert await runner.run(request) is None  # redelivered: acked, nothing emitted twice
    emitted = [e for e in recorder.emitted if e.event == "etl.noticed"]
    assert len(emitted) == 1
    assert emitted[0].resource.id == "etl.etl-watch"
    entry = await ledger.get(str(request.id))
    assert entry is not None
    assert (entry["status"], entry["attempts"]) == ("succeeded", 1)
    assert entry["result"].startswith("emitted etl.noticed")
    lifecycle = [n for n in names(recorder) if n.startswith("tripwire.action.")]
    # triggered and executed, then both published again (same ids) on redelivery
    assert lifecycle == [
        "tripwire.action.triggered",
        "tripwire.action.executed",
        "tripwire.action.triggered",
        "tripwire.action.executed",
    ]
    ids = {e.id for e in recorder.emitted if e.event.startswith("tripwire.action.")}
    assert len(ids) == 2


async def test_transient_failures_back_off_then_go_to_the_dead_letter(
    runner: ActionRunner, ledger: Ledger, recorder: Recorder
) -> None:
    request = request_for(closed_port_webhook())
    with clock.frozen_clock(START) as frozen:
        first = await runner.run(request)
        assert first is not None
        assert 2.0 <= first <= 4.0  # 4 s with jitter between half and all of it
        assert await runner.run(request) == pytest.approx(first, abs=first)  # not due yet
        entry = await ledger.get(str(request.id))
        assert entry is not None
        assert (entry["status"], entry["attempts"]) == ("retrying", 1)
        assert "unreachable" in entry["last_error"]
        frozen.advance(timedelta(seconds=first))
        second = await runner.run(request)
        assert second is not None
        assert 4.0 <= second <= 8.0  # doubled
        frozen.advance(timedelta(seconds=second))
        assert await runner.run(request) is None  # third and last attempt (retries: 2)
    entry = await ledger.get(str(request.id))
    assert entry is not None
    assert (entry["status"], entry["attempts"]) == ("failed", 3)
    failed = [e for e in recorder.emitted if e.event == "tripwire.action.failed"]
    assert len(failed) == 1
    assert failed[0].payload["attempt"] == 3
    assert failed[0].payload["retryable"] is True
    roles = {r.role for r in failed[0].related}
    assert {"automation", "tripwire-cause"} <= roles
    assert [e["id"] for e in await ledger.list(status=Status.failed)] == [str(request.id)]


async def test_a_permanent_failure_is_not_retried(
    runner: ActionRunner, ledger: Ledger, recorder: Recorder
) -> None:
    request = request_for(
        {
            "type": "emit-event",
            "event": "{{ event.missing }}",
            "resource": {"prefect.resource.id": "x"},
        }
    )
    assert await runner.run(request) is None
    entry = await ledger.get(str(request.id))
    assert entry is not None
    assert (entry["status"], entry["attempts"]) == ("failed", 1)
    assert entry["last_error"].startswith("template event:")
    assert names(recorder) == ["tripwire.action.triggered", "tripwire.action.failed"]


async def test_an_action_with_no_retries_fails_at_its_first_transient_failure(
    runner: ActionRunner, ledger: Ledger
) -> None:
    request = request_for(closed_port_webhook(retries=0))
    assert await runner.run(request) is None
    entry = await ledger.get(str(request.id))
    assert entry is not None
    assert (entry["status"], entry["attempts"]) == ("failed", 1)


def test_retry_after_from_the_target_overrides_the_backoff() -> None:
    policy = RetryPolicy(retry_delay=timedelta(seconds=1), max_retry_delay=timedelta(seconds=5))
    request = request_for({"type": "do-nothing"})
    assert policy.delay(request, 1, retry_after=3.0) == 3.0
    # a week-long Retry-After would outlive the request's message on the stream
    assert policy.delay(request, 1, retry_after=7 * 86400.0) == 5.0
    assert 2.5 <= policy.delay(request, 10, retry_after=None) <= 5.0  # capped


async def test_a_failed_request_can_be_run_again_in_a_new_round(
    runner: ActionRunner, ledger: Ledger, recorder: Recorder
) -> None:
    request = request_for(closed_port_webhook(retries=0))
    await runner.run(request)
    again = await ledger.rerun(str(request.id))
    assert again == request
    done = request_for({"type": "do-nothing"})
    await runner.run(done)
    with pytest.raises(ValueError, match="only failed requests"):
        await ledger.rerun(str(done.id))
    entry = await ledger.get(str(request.id))
    assert entry is not None
    assert (entry["status"], entry["round"], entry["attempts"]) == ("pending", 1, 0)
    assert await ledger.rerun(str(request.id)) == request  # still pending: sent again as is
    entry = await ledger.get(str(request.id))
    assert entry is not None
    assert (entry["status"], entry["round"]) == ("pending", 1)
    with pytest.raises(LookupError):
        await ledger.rerun("00000000-0000-0000-0000-000000000000")


async def test_a_lapsed_claim_is_taken_over_and_a_live_one_is_not(
    runner: ActionRunner, ledger: Ledger
) -> None:
    request = request_for({"type": "do-nothing"})
    with clock.frozen_clock(START) as frozen:
        claim = await ledger.claim(request, timedelta(seconds=45))  # a worker took it ...
        assert claim.granted
        busy = await ledger.claim(request, timedelta(seconds=45))
        assert not busy.granted
        assert busy.wait == pytest.approx(45)
        frozen.advance(timedelta(seconds=46))  # ... and died
        taken = await ledger.claim(request, timedelta(seconds=45))
        assert taken.granted
        assert taken.interrupted
        assert taken.attempts == 2


async def test_secrets_never_reach_the_ledger_or_events(
    runner: ActionRunner, ledger: Ledger, recorder: Recorder
) -> None:
    request = request_for(
        closed_port_webhook(retries=0, url="http://127.0.0.1:1/hook?token={{ secret('TOKEN') }}")
    )
    await runner.run(request)
    entry = await ledger.get(str(request.id))
    assert entry is not None
    assert entry["last_error"]
    assert "s3cr3t-token" not in entry["last_error"]
    assert "s3cr3t-token" not in str([e.model_dump() for e in recorder.emitted])


async def test_the_sweep_drops_old_finished_entries_and_keeps_unfinished_ones(
    runner: ActionRunner, ledger: Ledger
) -> None:
    done, dead = request_for({"type": "do-nothing"}), request_for(closed_port_webhook(retries=0))
    waiting = request_for(closed_port_webhook())
    with clock.frozen_clock(START) as frozen:
        for request in (done, dead, waiting):
            await runner.run(request)
        frozen.advance(timedelta(days=8))
        assert await ledger.sweep(clock.now() - timedelta(days=7)) == 2
    assert await ledger.get(str(done.id)) is None
    assert await ledger.get(str(dead.id)) is None
    entry = await ledger.get(str(waiting.id))
    assert entry is not None
    assert entry["status"] == "retrying"


def test_under_sqlite_the_ledger_has_a_file_of_its_own(tmp_path: Path) -> None:
    default = Settings(home=tmp_path)
    assert default.ledger_database_url.endswith("/tripwire-actions.db")
    assert default.ledger_database_url != default.resolved_database_url
    explicit = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/x.db")
    assert explicit.ledger_database_url == f"sqlite+aiosqlite:///{tmp_path}/x-actions.db"
    postgres = Settings(database_url="postgresql://postgres@127.0.0.1:5432/test")
    assert postgres.ledger_database_url == postgres.resolved_database_url


async def test_a_bus_outage_does_not_hold_up_the_action_and_loses_no_event(
    ledger: Ledger, recorder: Recorder
) -> None:
    outage = {"on": True}

    async def emit(events: Sequence[Event]) -> None:
        if outage["on"]:
            raise BusUnavailable("the event bus (NATS) is not reachable")
        await recorder.emit(events)

    async with httpx.AsyncClient(timeout=2) as http:
        runner = ActionRunner(
            ledger=ledger,
            executors=EXECUTORS,
            templates=Templates(Secrets(environ={})),
            http=http,
            guard=AllowAll(),
            emit=emit,
            automations=recorder,
        )
        request = request_for({"type": "do-nothing"})
        with pytest.raises(BusUnavailable):  # the outcome could not be announced: nak
            await runner.run(request)
        entry = await ledger.get(str(request.id))
        assert entry is not None
        assert entry["status"] == "succeeded"  # ... but the action ran, once
        outage["on"] = False
        assert await runner.run(request) is None  # redelivered once the bus is back
    assert names(recorder) == ["tripwire.action.triggered", "tripwire.action.executed"]


async def test_a_worker_whose_claim_was_taken_over_cannot_overwrite_the_outcome(
    ledger: Ledger,
) -> None:
    request = request_for({"type": "do-nothing"})
    with clock.frozen_clock(START) as frozen:
        first = await ledger.claim(request, timedelta(seconds=10))
        frozen.advance(timedelta(seconds=11))  # worker A stalls past its lease ...
        second = await ledger.claim(request, timedelta(seconds=10))  # ... B takes over
        assert (first.attempts, second.attempts) == (1, 2)
        done = Record(request.id, Status.succeeded, attempt=2, result="ok")
        stale = Record(
            request.id, Status.retrying, attempt=1, error="timed out", next_attempt=clock.now()
        )
        assert await ledger.record_many([done]) == [True]
        assert await ledger.record_many([stale]) == [False]  # A comes back late
    entry = await ledger.get(str(request.id))
    assert entry is not None
    assert (entry["status"], entry["attempts"], entry["result"]) == ("succeeded", 2, "ok")


async def test_an_emit_event_during_a_bus_outage_is_retried_not_logged_as_a_bug(
    ledger: Ledger, recorder: Recorder, caplog: pytest.LogCaptureFixture
) -> None:
    async def emit(events: Sequence[Event]) -> None:
        if any(e.event == "etl.noticed" for e in events):
            raise BusUnavailable("the event bus (NATS) is not reachable")
        await recorder.emit(events)

    async with httpx.AsyncClient(timeout=2) as http:
        runner = ActionRunner(
            ledger=ledger,
            executors=EXECUTORS,
            templates=Templates(Secrets(environ={})),
            http=http,
            guard=AllowAll(),
            emit=emit,
            automations=recorder,
        )
        request = request_for(
            {"type": "emit-event", "event": "etl.noticed", "resource": {"prefect.resource.id": "x"}}
        )
        with caplog.at_level("WARNING", logger="tripwire.actions"):
            await runner.run(request)
    entry = await ledger.get(str(request.id))
    assert entry is not None
    assert entry["status"] == "retrying"
    assert "not reachable" in entry["last_error"]
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


async def test_the_ledger_lists_page_by_page_newest_first(
    runner: ActionRunner, ledger: Ledger
) -> None:
    requests = [request_for({"type": "do-nothing"}) for _ in range(5)]
    with clock.frozen_clock(START) as frozen:
        for request in requests:
            await runner.run(request)
        frozen.advance(timedelta(seconds=1))
        same_instant = [request_for({"type": "do-nothing"}) for _ in range(3)]
        for request in same_instant:  # created at one instant: ordered by id among them
            await runner.run(request)
    seen: list[str] = []
    before = None
    while True:
        page = await ledger.list(before=before, limit=3)
        if not page:
            break
        assert all("request" not in entry for entry in page)  # bodies stay in the table
        seen += [entry["id"] for entry in page]
        before = (page[-1]["created"], page[-1]["id"])
    assert len(seen) == len(set(seen)) == 8
    assert set(seen[:3]) == {str(r.id) for r in same_instant}
    assert seen[:3] == sorted(seen[:3], reverse=True)
