"""pagerduty against a real local receiver that validates events the way PagerDuty's
Events API v2 does: 400 `invalid event` naming the errors, else 202."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from actions.context import template_context
from actions.errors import ActionFailed, ActionRetry, TemplateError, UnsafeURL
from actions.execution import Execution, Outcome
from actions.executors import EXECUTORS
from actions.guard import AddressGuard
from actions.model import Action, PagerDuty
from actions.pagerduty import MAX_EVENT_BYTES, send_pagerduty
from actions.request import AlertNotice, FiringState
from events.embedded import free_port
from tests.actions.conftest import MakeExecution
from tests.actions.receivers import Message, Receiver, Reply, Scope, read_body
from tests.support import fixture_events

KEY = "R0UT1NGKEY0123456789abcdefABCDEF"  # 32 characters, as PagerDuty's keys are
SECRETS = {"PAGERDUTY_ROUTING_KEY": KEY}
GROUP = "3f2a9c0d41b7e6a5"
LAST_FIRED = "2026-11-21T09:42:59.123000+00:00"
SEVERITIES = ("critical", "error", "warning", "info")
ACTIONS: TypeAdapter[Action] = TypeAdapter(Action)


def _json_reply(status: int, answer: dict[str, Any], **headers: str) -> Reply:
    return Reply(status, json.dumps(answer), {"content-type": "application/json", **headers})


def invalid_event(*errors: str) -> Reply:
    return _json_reply(
        400, {"status": "invalid event", "message": "Event object is invalid", "errors": errors}
    )


def events_api_answer(body: bytes) -> Reply:
    """What the Events API v2 answers to `body`: its checks, in its words where known."""
    try:
        event = json.loads(body)
    except ValueError:
        return invalid_event("Event object is not valid JSON")
    if not isinstance(event, dict):
        return invalid_event("Event object must be a JSON object")
    errors: list[str] = []
    key = event.get("routing_key")
    if not isinstance(key, str) or len(key) != 32:
        errors.append("Length of 'routing_key' is incorrect (should be 32 characters)")
    action = event.get("event_action")
    if action not in ("trigger", "acknowledge", "resolve"):
        errors.append("'event_action' must be one of trigger, acknowledge, resolve")
    dedup = event.get("dedup_key")
    if dedup is not None and (not isinstance(dedup, str) or len(dedup) > 255):
        errors.append("'dedup_key' must be a string of at most 255 characters")
    if action in ("acknowledge", "resolve") and not dedup:
        errors.append(f"'dedup_key' is required to {action}")
    if action == "trigger":
        payload = event.get("payload")
        if not isinstance(payload, dict):
            errors.append("'payload' is missing")
            payload = {}
        for field in ("summary", "source", "severity"):
            if not isinstance(payload.get(field), str) or not payload[field].strip():
                errors.append(f"'payload.{field}' is missing or blank")
        if len(payload.get("summary") or "") > 1024:
            errors.append("Length of 'payload.summary' is incorrect (at most 1024 characters)")
        if payload.get("severity") and payload["severity"] not in SEVERITIES:
            errors.append("'payload.severity' must be one of critical, error, warning, info")
    if len(body) > 512 * 1024:
        errors.append("Event object is larger than 512 KB")
    if errors:
        return invalid_event(*errors)
    answer = {"status": "success", "message": "Event processed", "dedup_key": dedup}
    return _json_reply(202, answer)


class EventsAPI(Receiver):
    """A Receiver that answers as the Events API v2; scripted replies (a 429, a 5xx) go
    first, and every event is checked."""

    async def __call__(
        self,
        scope: Scope,
        receive: Callable[[], Awaitable[Message]],
        send: Callable[[Message], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        if not self._script:
            self.script(events_api_answer(body))

        async def replay() -> Message:
            return {"type": "http.request", "body": body, "more_body": False}

        await super().__call__(scope, replay, send)


@pytest.fixture
async def pagerduty() -> AsyncIterator[EventsAPI]:
    async with EventsAPI() as receiver:
        yield receiver


def pd_action(receiver: EventsAPI | None = None, **fields: Any) -> dict[str, Any]:
    action: dict[str, Any] = {
        "type": "pagerduty",
        "routing_key": "{{ secret('PAGERDUTY_ROUTING_KEY') }}",
        **fields,
    }
    if receiver is not None:
        action["url"] = receiver.url("/v2/enqueue")
    return action


def notice(status: str = "firing", **fields: Any) -> AlertNotice:
    """A group of two alerts of etl-watch, one of them firing."""
    alerts = [
        {
            "fingerprint": "a1",
            "name": "etl-orders failed",
            "kind": "automation",
            "state": "firing",
            "severity": "critical",
            "key": {"prefect.resource.id": "prefect.flow-run.1"},
            "labels": {"team": "data", "flow": "etl-orders"},
            "first_fired": "2026-11-21T09:00:00+00:00",
            "last_fired": LAST_FIRED,
            "count": 3,
            "summary": "etl-orders failed 3 times",
        },
        {
            "fingerprint": "a2",
            "name": "etl-items failed",
            "kind": "automation",
            "state": "resolved",
            "severity": "warning",
            "labels": {"team": "data", "flow": "etl-items"},
            "last_fired": "2026-11-21T08:00:00+00:00",
        },
    ]
    given: dict[str, Any] = {
        "status": status,
        "group": GROUP,
        "labels": {"team": "data"},
        "total": 2,
        "firing": 1,
        "alerts": alerts,
    }
    return AlertNotice.model_validate(given | fields)


def with_request(
    run: Execution,
    *,
    notice: AlertNotice | None = None,
    state: FiringState = FiringState.triggered,
) -> Execution:
    """The attempt for the same action, about a notice or a firing state, with what
    templates see as the runner builds it."""
    request = run.request.model_copy(update={"notice": notice, "state": state})
    return dataclasses.replace(run, request=request, context=template_context(request))


async def send(run: Execution) -> Outcome:
    assert isinstance(run.request.action, PagerDuty)
    return await send_pagerduty(run.request.action, run)


def failed_flow_run() -> dict[str, Any]:
    return next(e for e in fixture_events() if e["event"] == "prefect.flow-run.Failed")


async def test_trigger_acknowledge_and_resolve_share_the_groups_dedup_key(
    pagerduty: EventsAPI, make_execution: MakeExecution
) -> None:
    outcomes = []
    for status in ("firing", "acknowledged", "resolved"):
        run = make_execution(pd_action(pagerduty), secrets=SECRETS)
        outcomes.append(await send(with_request(run, notice=notice(status))))

    trigger, acknowledge, resolve = (r.json() for r in pagerduty.requests)
    assert all(r.headers["content-type"] == "application/json" for r in pagerduty.requests)
    assert [e["event_action"] for e in (trigger, acknowledge, resolve)] == [
        "trigger",
        "acknowledge",
        "resolve",
    ]
    assert {e["dedup_key"] for e in (trigger, acknowledge, resolve)} == {GROUP}
    # The v2 API wants nothing else to acknowledge or resolve.
    assert acknowledge == {"routing_key": KEY, "event_action": "acknowledge", "dedup_key": GROUP}
    assert resolve == {"routing_key": KEY, "event_action": "resolve", "dedup_key": GROUP}
    assert trigger["routing_key"] == KEY
    payload = trigger["payload"]
    assert payload["summary"] == (
        "etl-watch: 1 of 2 alerts firing (team=data): etl-orders failed 3 times, etl-items failed"
    )
    assert payload["source"] == "tripwire"
    assert payload["severity"] == "critical"  # the most severe alert's
    assert payload["timestamp"] == "2026-11-21T09:42:59.123Z"  # the newest last_fired
    assert not {"component", "group", "class"} & set(payload)
    assert payload["custom_details"] == {
        "automation": "etl-watch",
        "labels": {"team": "data"},
        "total": 2,
        "firing": 1,
        "alerts": [
            {
                "name": "etl-orders failed",
                "state": "firing",
                "labels": {"team": "data", "flow": "etl-orders"},
                "key": {"prefect.resource.id": "prefect.flow-run.1"},
                "summary": "etl-orders failed 3 times",
            },
            {
                "name": "etl-items failed",
                "state": "resolved",
                "labels": {"team": "data", "flow": "etl-items"},
            },
        ],
    }
    assert [o.summary for o in outcomes] == [
        f"PagerDuty {action} accepted (dedup_key {GROUP})"
        for action in ("trigger", "acknowledge", "resolve")
    ]
    assert [o.status_code for o in outcomes] == [202, 202, 202]
    assert outcomes[1].details == {"event_action": "acknowledge", "dedup_key": GROUP}
    assert not any(KEY in repr(o) for o in outcomes)


async def test_one_alert_is_the_title_and_its_severity_maps_to_pagerdutys(
    pagerduty: EventsAPI, make_execution: MakeExecution
) -> None:
    alert = {"name": "orders late", "state": "firing", "severity": "page-me", "labels": {}}
    single = notice(total=1, firing=1, labels={}, alerts=[alert])
    run = make_execution(pd_action(pagerduty), secrets=SECRETS)
    await send(with_request(run, notice=single))

    payload = pagerduty.requests[0].json()["payload"]
    assert payload["summary"] == "orders late"
    assert payload["severity"] == "error"  # not one of PagerDuty's four
    # No last_fired to go by: when the trigger fired.
    assert payload["timestamp"] == "2026-11-21T09:00:00.000Z"


@pytest.mark.parametrize(
    ("severities", "expected"),
    [
        (["critical"], "critical"),
        (["warning"], "warning"),
        (["info"], "info"),
        (["high"], "error"),
        ([None], "error"),
        (["info", "warning"], "warning"),
        (["warning", "critical", "info"], "critical"),
    ],
)
async def test_severity_is_the_most_severe_alerts(
    pagerduty: EventsAPI,
    make_execution: MakeExecution,
    severities: list[str | None],
    expected: str,
) -> None:
    alerts = [{"name": f"a{i}", "severity": s} for i, s in enumerate(severities)]
    run = make_execution(pd_action(pagerduty), secrets=SECRETS)
    await send(with_request(run, notice=notice(alerts=alerts, total=len(alerts))))
    assert pagerduty.requests[0].json()["payload"]["severity"] == expected


async def test_without_a_notice_the_firing_id_is_the_dedup_key(
    pagerduty: EventsAPI, make_execution: MakeExecution
) -> None:
    run = make_execution(
        pd_action(pagerduty), failed_flow_run(), secrets=SECRETS, labels={"team": "data"}
    )
    triggered = await send(run)
    resolved = await send(with_request(run, state=FiringState.resolved))

    trigger, resolve = (r.json() for r in pagerduty.requests)
    firing_id = str(run.request.firing_id)
    assert trigger["event_action"] == "trigger"
    assert trigger["dedup_key"] == firing_id
    payload = trigger["payload"]
    assert payload["summary"] == "etl-watch triggered: prefect.flow-run.Failed on tuscan-guppy"
    assert payload["severity"] == "error"
    assert payload["timestamp"] == "2026-11-21T09:00:00.000Z"
    assert payload["custom_details"] == {
        "automation": "etl-watch",
        "firing_id": firing_id,
        "state": "triggered",
        "labels": {"team": "data"},
        "event": "prefect.flow-run.Failed",
        "resource": "prefect.flow-run.ca9ccda5-45a7-457c-838e-c987f0b2d62d",
    }
    assert resolve == {"routing_key": KEY, "event_action": "resolve", "dedup_key": firing_id}
    assert triggered.details == {"event_action": "trigger", "dedup_key": firing_id}
    assert resolved.summary == f"PagerDuty resolve accepted (dedup_key {firing_id})"


async def test_templates_fill_the_payload(
    pagerduty: EventsAPI, make_execution: MakeExecution
) -> None:
    action = pd_action(
        pagerduty,
        summary="{{ notice.firing }} failing for {{ notice.labels.team }}",
        source="{{ alerts[0].labels.flow }}.prod",
        component="{{ alerts[0].name }}",
        group="{{ notice.labels.team }}",
        severity="warning",
        **{"class": "flow failure"},
    )
    run = make_execution(action, secrets=SECRETS)
    await send(with_request(run, notice=notice()))

    payload = pagerduty.requests[0].json()["payload"]
    assert {k: payload[k] for k in ("summary", "source", "severity")} == {
        "summary": "1 failing for data",
        "source": "etl-orders.prod",
        "severity": "warning",  # given, so not the alerts' critical
    }
    assert (payload["component"], payload["group"], payload["class"]) == (
        "etl-orders failed",
        "data",
        "flow failure",
    )


async def test_blank_renders_fall_back_and_a_long_summary_is_cut(
    pagerduty: EventsAPI, make_execution: MakeExecution
) -> None:
    action = pd_action(pagerduty, summary="{{ 'x' * 5000 }}", source=" ", component="")
    run = make_execution(action, secrets=SECRETS)
    await send(with_request(run, notice=notice()))

    payload = pagerduty.requests[0].json()["payload"]
    assert len(payload["summary"]) == 1024
    assert payload["summary"].endswith("x…")
    assert payload["source"] == "tripwire"
    assert "component" not in payload


async def test_a_large_group_is_trimmed_under_pagerdutys_size_limit(
    pagerduty: EventsAPI, make_execution: MakeExecution
) -> None:
    labels = {f"label{i}": "v" * 2000 for i in range(20)}  # about 40 KB an alert
    alerts = [{"name": f"alert {i}", "state": "firing", "labels": labels} for i in range(50)]
    run = make_execution(pd_action(pagerduty), secrets=SECRETS)
    outcome = await send(with_request(run, notice=notice(alerts=alerts, total=50, firing=50)))

    [request] = pagerduty.requests
    assert len(request.body) <= MAX_EVENT_BYTES
    shown = request.json()["payload"]["custom_details"]["alerts"]
    assert 0 < len(shown) < 20
    assert shown[0]["name"] == "alert 0"  # the first alerts are kept
    assert outcome.status_code == 202


async def test_a_refused_event_fails_naming_pagerdutys_errors(
    pagerduty: EventsAPI, make_execution: MakeExecution
) -> None:
    short_key = KEY[:-1]
    run = make_execution(pd_action(pagerduty), secrets={"PAGERDUTY_ROUTING_KEY": short_key})

    with pytest.raises(ActionFailed) as failed:
        await send(with_request(run, notice=notice()))

    assert not isinstance(failed.value, ActionRetry)
    assert failed.value.status_code == 400
    message = failed.value.message
    assert "PagerDuty (127.0.0.1) refused the trigger event (400 invalid event): " in message
    assert "Length of 'routing_key' is incorrect (should be 32 characters)" in message
    assert "32-character integration key of an Events API v2 integration" in message
    assert short_key not in message


async def test_the_routing_key_is_hidden_even_when_pagerduty_repeats_it(
    pagerduty: EventsAPI, make_execution: MakeExecution
) -> None:
    pagerduty.script(invalid_event(f"'payload.severity' is invalid for routing key {KEY}"))
    run = make_execution(pd_action(pagerduty), secrets=SECRETS)

    with pytest.raises(ActionFailed) as failed:
        await send(with_request(run, notice=notice()))

    assert KEY not in failed.value.message
    assert "for routing key ***" in failed.value.message
    assert "severity must be critical, error, warning or info" in failed.value.message


@pytest.mark.parametrize(("headers", "wait"), [({"Retry-After": "7"}, 7.0), ({}, 30.0)])
async def test_a_429_is_retried_after_pagerdutys_wait(
    pagerduty: EventsAPI, make_execution: MakeExecution, headers: dict[str, str], wait: float
) -> None:
    pagerduty.script(Reply(429, "", headers))
    run = make_execution(pd_action(pagerduty), secrets=SECRETS)

    with pytest.raises(ActionRetry) as retry:
        await send(with_request(run, notice=notice("resolved")))

    assert retry.value.status_code == 429
    assert retry.value.retry_after == wait
    assert "rate limiting" in retry.value.message
    assert KEY not in retry.value.message


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_a_5xx_is_retried(
    pagerduty: EventsAPI, make_execution: MakeExecution, status: int
) -> None:
    pagerduty.script(Reply(status, "upstream trouble"))
    run = make_execution(pd_action(pagerduty), secrets=SECRETS)

    with pytest.raises(ActionRetry, match=f"answered {status}") as retry:
        await send(with_request(run, notice=notice()))
    assert retry.value.status_code == status
    assert KEY not in retry.value.message


async def test_another_4xx_fails(pagerduty: EventsAPI, make_execution: MakeExecution) -> None:
    pagerduty.script(Reply(404, "no such route"))
    run = make_execution(pd_action(pagerduty), secrets=SECRETS)

    with pytest.raises(ActionFailed, match="Events API v2 enqueue endpoint") as failed:
        await send(with_request(run, notice=notice()))
    assert not isinstance(failed.value, ActionRetry)
    assert failed.value.status_code == 404


async def test_an_unreachable_endpoint_is_retried(make_execution: MakeExecution) -> None:
    url = f"http://127.0.0.1:{free_port()}/v2/enqueue"
    run = make_execution(pd_action(url=url), secrets=SECRETS)

    with pytest.raises(ActionRetry, match="was unreachable") as retry:
        await send(with_request(run, notice=notice()))
    assert KEY not in retry.value.message


async def test_an_empty_routing_key_fails_before_sending(
    pagerduty: EventsAPI, make_execution: MakeExecution
) -> None:
    run = make_execution(pd_action(pagerduty), secrets={"PAGERDUTY_ROUTING_KEY": " "})
    with pytest.raises(ActionFailed, match="routing_key: rendered empty"):
        await send(with_request(run, notice=notice()))
    assert pagerduty.requests == []


async def test_the_guard_refuses_a_private_endpoint_before_sending(
    pagerduty: EventsAPI, make_execution: MakeExecution
) -> None:
    refused = make_execution(pd_action(pagerduty), secrets=SECRETS, guard=AddressGuard(False))
    with pytest.raises(UnsafeURL, match="pagerduty url") as unsafe:
        await send(with_request(refused, notice=notice()))
    assert KEY not in unsafe.value.message
    assert pagerduty.requests == []


async def test_a_template_that_fails_names_the_field(
    pagerduty: EventsAPI, make_execution: MakeExecution
) -> None:
    run = make_execution(pd_action(pagerduty, **{"class": "{{ nothing.here }}"}), secrets=SECRETS)
    with pytest.raises(TemplateError, match="pagerduty class"):
        await send(with_request(run, notice=notice()))
    assert pagerduty.requests == []


def test_the_runner_finds_the_executor() -> None:
    assert EXECUTORS["pagerduty"] is send_pagerduty


def test_the_model_defaults_and_class_alias() -> None:
    action = ACTIONS.validate_python(pd_action(None, **{"class": "latency"}))
    assert isinstance(action, PagerDuty)
    assert action.url == "https://events.pagerduty.com/v2/enqueue"
    assert (action.class_, action.severity, action.summary, action.grouping) == (
        "latency",
        None,
        None,
        None,
    )
    dumped = action.model_dump(mode="json", by_alias=True, exclude_none=True)
    assert dumped["class"] == "latency"
    assert ACTIONS.validate_python(dumped) == action  # read back from the bus unchanged


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"routing_key": None}, "routing_key"),
        ({"priority": "P1"}, "Extra inputs"),
        ({"severity": "high"}, "severity"),
        ({"summary": "{{ alerts[0].name "}, "summary: template"),
        ({"class": "{% if x %}"}, "class: template"),
        ({"grouping": {"by": ["team"], "every": "1m"}}, "Extra inputs"),
    ],
)
def test_model_mistakes_are_explained(fields: dict[str, Any], words: str) -> None:
    action = {k: v for k, v in (pd_action() | fields).items() if v is not None}
    with pytest.raises(ValidationError, match=words):
        ACTIONS.validate_python(action)
