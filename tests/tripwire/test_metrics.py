"""`/metrics` over real HTTP, and the JSON log format.

The metrics live in the process-wide registry that every engine of the test session
shares, so each test compares against a scrape it took first (deltas)."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import orjson
import pytest
import websockets
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from events import clock
from sla.timers import DueTimer
from tests.actions.test_live import failed_run
from tests.support import Running, StartEngine, eventually
from tests.triggers.test_live import post
from tripwire.logs import JsonFormatter
from tripwire.settings import Settings

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(running: Running) -> Samples:
    async with running.client() as http:
        response = await http.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def until(running: Running, ready: Callable[[Samples], bool], timeout: float = 10) -> Samples:
    """Scrape until `ready` holds: metrics are recorded just after the effects tests see."""

    async def scraped() -> Samples | None:
        samples = await scrape(running)
        return samples if ready(samples) else None

    return await eventually(scraped, timeout, "the metrics")


def event() -> dict[str, Any]:
    return {"event": "metrics.seen", "resource": {"prefect.resource.id": "metrics.r"}}


async def test_ingest_counts_accepted_and_rejected_events_and_the_store_batches(
    engine: Running,
) -> None:
    before = await scrape(engine)
    async with engine.client() as http:
        accepted = await http.post("/api/events", json=[event(), event(), event()])
        assert accepted.status_code == 202
        invalid = await http.post("/api/events", json={"event": "no resource"})
        assert invalid.status_code == 422
    async with websockets.connect(engine.ws_url + "/api/events/in") as ws:
        await ws.send(json.dumps(event()))
        await ws.send(json.dumps(event()))
        await asyncio.wait_for(await ws.ping(), 5)
        await ws.send("not json")
        await ws.wait_closed()
    await engine.wait_stored(5)

    def delta(after: Samples, name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    ws_invalid = {"transport": "websocket", "reason": "invalid"}
    after = await until(
        engine,
        lambda now: (
            delta(now, "tripwire_evaluation_batch_size_sum") >= 5
            and delta(now, "tripwire_events_rejected_total", **ws_invalid) >= 1
        ),
    )
    assert delta(after, "tripwire_events_accepted_total", transport="http") == 3
    assert delta(after, "tripwire_events_accepted_total", transport="websocket") == 2
    assert delta(after, "tripwire_events_rejected_total", transport="http", reason="invalid") == 1
    assert delta(after, "tripwire_events_rejected_total", **ws_invalid) == 1
    assert delta(after, "tripwire_evaluation_batch_size_sum") == 5
    assert delta(after, "tripwire_evaluation_seconds_count", kind="events") >= 1
    # One publish for the HTTP batch, one or more for the websocket's (it batches frames).
    assert delta(after, "tripwire_bus_publish_seconds_count", stream="events") >= 2
    assert ("tripwire_consumer_lag", (("consumer", "store"),)) in after


async def test_an_executed_action_and_its_firing_are_counted(start_engine: StartEngine) -> None:
    running = await start_engine()
    name = f"metrics-{uuid.uuid4().hex[:8]}"
    automation = {
        "name": name,
        "trigger": {
            "type": "event",
            "match": {"prefect.resource.id": "prefect.flow-run.*"},
            "expect": ["prefect.flow-run.Failed"],
            "posture": "Reactive",
            "threshold": 1,
            "within": 0,
        },
        "actions": [{"type": "do-nothing"}],
    }
    before = await scrape(running)
    async with running.client() as http:
        answer = await http.post("/api/automations/", json=automation)
        assert answer.status_code == 201, answer.text
    await post(running, failed_run())

    executed = {"type": "do-nothing", "outcome": "executed"}
    after = await until(
        running,
        lambda now: (
            value(now, "tripwire_actions_total", **executed)
            > value(before, "tripwire_actions_total", **executed)
        ),
        timeout=15,
    )
    firings = {"automation": name, "state": "triggered"}
    assert value(after, "tripwire_firings_total", **firings) == 1
    assert (
        value(after, "tripwire_actions_total", **executed)
        - value(before, "tripwire_actions_total", **executed)
        == 1
    )
    assert value(after, "tripwire_action_attempt_seconds_count", type="do-nothing") > value(
        before, "tripwire_action_attempt_seconds_count", type="do-nothing"
    )
    assert value(after, "tripwire_bus_publish_seconds_count", stream="actions") > value(
        before, "tripwire_bus_publish_seconds_count", stream="actions"
    )


async def test_metrics_answer_without_the_api_key(start_engine: StartEngine) -> None:
    running = await start_engine(api_key="k3y")
    async with running.client() as http:
        assert (await http.post("/api/events/filter", json={})).status_code == 401
        response = await http.get("/metrics")
    assert response.status_code == 200
    assert "tripwire_events_accepted_total" in response.text


async def test_timer_lag_is_how_late_a_wake_up_ran() -> None:
    async def due(now: datetime) -> datetime | None:
        return None

    def lag() -> tuple[float, float]:
        count = REGISTRY.get_sample_value("tripwire_timer_lag_seconds_count") or 0.0
        total = REGISTRY.get_sample_value("tripwire_timer_lag_seconds_sum") or 0.0
        return count, total

    timer = DueTimer(due)
    with clock.frozen_clock() as frozen:
        count, total = lag()
        timer.next = frozen()  # as wake_at leaves it
        frozen.advance(timedelta(seconds=2))
        await timer.run()
        assert lag() == pytest.approx((count + 1, total + 2))
        await timer.run()  # a poll with nothing scheduled is no wake-up
        assert lag() == pytest.approx((count + 1, total + 2))


def test_json_log_lines_carry_time_level_logger_message_and_exception() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        exc_info = sys.exc_info()
    record = logging.LogRecord(
        "tripwire.test", logging.ERROR, __file__, 1, "failed %d times", (3,), exc_info
    )
    line: dict[str, Any] = orjson.loads(JsonFormatter().format(record))
    assert line["level"] == "ERROR"
    assert line["logger"] == "tripwire.test"
    assert line["message"] == "failed 3 times"
    assert line["time"].endswith("+00:00")
    assert "ValueError: boom" in line["exception"]
    plain = orjson.loads(JsonFormatter().format(logging.makeLogRecord({"msg": "hi"})))
    assert "exception" not in plain


def test_log_format_is_text_or_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIPWIRE_LOG_FORMAT", "json")
    assert Settings().log_format == "json"
    monkeypatch.setenv("TRIPWIRE_LOG_FORMAT", "xml")
    with pytest.raises(ValueError, match="log_format"):
        Settings()
