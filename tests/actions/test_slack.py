"""send-slack against a real local receiver that answers the way Slack does."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from actions.errors import ActionFailed, ActionRetry, UnsafeURL
from actions.execution import Execution, Outcome
from actions.guard import AddressGuard
from actions.model import SendSlack
from actions.slack import Pacer, send_slack, webhook_label
from events import clock
from events.embedded import free_port
from tests.actions.conftest import MakeExecution
from tests.actions.receivers import Receiver, Reply, slack_error
from tests.support import fixture_events

TOKEN = "xoxSecretToken123"
PATH = f"/services/T0001AAAA/B0002BBBB/{TOKEN}"


async def post(run: Execution) -> Outcome:
    assert isinstance(run.request.action, SendSlack)
    return await send_slack(run.request.action, run)


@pytest.fixture
async def slack() -> AsyncIterator[Receiver]:
    async with Receiver() as receiver:
        yield receiver


def failed_flow_run() -> dict[str, Any]:
    """The real prefect.flow-run.Failed event of etl-orders."""
    return next(e for e in fixture_events() if e["event"] == "prefect.flow-run.Failed")


def slack_action(**fields: Any) -> dict[str, Any]:
    return {"type": "send-slack", "webhook_url": "{{ secret('SLACK_WEBHOOK_URL') }}", **fields}


async def test_text_and_blocks_are_rendered_and_posted(
    slack: Receiver, make_execution: MakeExecution
) -> None:
    action = slack_action(
        text="{{ event.event }} on {{ event.resource['prefect.resource.name'] }}",
        blocks=[{"type": "section", "text": {"type": "mrkdwn", "text": "*{{ automation.name }}*"}}],
    )
    run = make_execution(action, failed_flow_run(), secrets={"SLACK_WEBHOOK_URL": slack.url(PATH)})

    outcome = await post(run)

    [request] = slack.requests
    assert request.method == "POST"
    assert request.path == PATH
    assert request.headers["content-type"] == "application/json"
    assert request.json() == {
        "text": "prefect.flow-run.Failed on tuscan-guppy",
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "*etl-watch*"}}],
    }
    assert outcome.status_code == 200
    assert (
        outcome.summary == f"posted to Slack 127.0.0.1:{slack.port}/services/T00…/B00…/*** (200 ok)"
    )
    assert TOKEN not in repr(outcome)


async def test_the_default_message_names_automation_event_resource_and_time(
    slack: Receiver, make_execution: MakeExecution
) -> None:
    run = make_execution(
        slack_action(),
        failed_flow_run(),
        secrets={"SLACK_WEBHOOK_URL": slack.url(PATH)},
        labels={"prefect.resource.id": "prefect.flow-run.ca9ccda5"},
    )
    await post(run)

    message = slack.requests[0].json()
    assert message["text"] == "etl-watch triggered: prefect.flow-run.Failed on tuscan-guppy"
    header, section, context = message["blocks"]
    assert header["type"] == "header"
    assert header["text"]["text"] == ":rotating_light: etl-watch triggered"
    fields = "\n".join(field["text"] for field in section["fields"])
    assert "*Event*\n`prefect.flow-run.Failed`" in fields
    assert "*Resource*\ntuscan-guppy\n`prefect.flow-run.ca9ccda5-45a7-457c-838e-c987f0b2d62d`" in (
        fields
    )
    assert "*Flow*\netl-orders" in fields
    assert "*Message*\nFlow run encountered an exception: ValueError: too few rows" in fields
    assert "*When*\n2026-11-21T09:42:59Z" in fields
    assert "*For each*\n`prefect.resource.id` = prefect.flow-run.ca9ccda5" in fields
    assert str(run.request.firing_id) in context["elements"][0]["text"]


async def test_the_default_message_links_the_resource_when_it_has_a_url_label(
    slack: Receiver, make_execution: MakeExecution
) -> None:
    event = {
        "event": "dbt.model.failed",
        "resource": {
            "prefect.resource.id": "dbt.model.orders",
            "prefect.resource.name": "orders <daily>",
            "dbt.docs.url": "https://docs.example.com/orders",
        },
    }
    run = make_execution(slack_action(), event, secrets={"SLACK_WEBHOOK_URL": slack.url(PATH)})
    await post(run)

    fields = [f["text"] for f in slack.requests[0].json()["blocks"][1]["fields"]]
    # Slack's mrkdwn: a <url|text> link, with <, > and & escaped in the text.
    assert "*Resource*\n<https://docs.example.com/orders|orders &lt;daily&gt;>" in fields[1]


async def test_a_429_is_retried_after_slacks_retry_after(
    slack: Receiver, make_execution: MakeExecution
) -> None:
    slack.script(slack_error(429, "rate_limited", **{"Retry-After": "7"}))
    run = make_execution(slack_action(text="hi"), secrets={"SLACK_WEBHOOK_URL": slack.url(PATH)})

    with pytest.raises(ActionRetry) as retry:
        await post(run)

    assert retry.value.retry_after == 7
    assert retry.value.status_code == 429
    assert "rate limiting (429 rate_limited)" in retry.value.message
    assert TOKEN not in retry.value.message


@pytest.mark.parametrize(
    ("reply", "hint"),
    [
        (slack_error(404, "no_service"), "create a new incoming webhook"),
        (slack_error(410, "channel_is_archived"), "unarchive it"),
        (slack_error(403, "invalid_token"), "no longer valid"),
        (slack_error(403, "action_prohibited"), "restricted posting"),
        (slack_error(400, "invalid_blocks"), "Block Kit Builder"),
        (slack_error(400, "invalid_payload"), "check text and blocks"),
    ],
)
async def test_slacks_permanent_errors_fail_with_what_to_do(
    slack: Receiver, make_execution: MakeExecution, reply: Reply, hint: str
) -> None:
    slack.script(reply)
    run = make_execution(slack_action(text="hi"), secrets={"SLACK_WEBHOOK_URL": slack.url(PATH)})

    with pytest.raises(ActionFailed) as failed:
        await post(run)

    assert not isinstance(failed.value, ActionRetry)
    assert failed.value.status_code == reply.status
    assert f"answered {reply.status} {reply.body}: " in failed.value.message
    assert hint in failed.value.message
    assert TOKEN not in failed.value.message


async def test_a_5xx_is_retried(slack: Receiver, make_execution: MakeExecution) -> None:
    slack.script(slack_error(500, "rollup_error"))
    run = make_execution(slack_action(text="hi"), secrets={"SLACK_WEBHOOK_URL": slack.url(PATH)})

    with pytest.raises(ActionRetry, match="answered 500 rollup_error"):
        await post(run)


async def test_an_unreachable_webhook_is_retried_without_showing_the_token(
    make_execution: MakeExecution,
) -> None:
    url = f"http://127.0.0.1:{free_port()}{PATH}"
    run = make_execution(slack_action(text="hi"), secrets={"SLACK_WEBHOOK_URL": url})

    with pytest.raises(ActionRetry, match="was unreachable") as retry:
        await post(run)
    assert TOKEN not in retry.value.message


async def test_posts_to_one_webhook_are_a_second_apart_and_others_do_not_wait(
    slack: Receiver, make_execution: MakeExecution
) -> None:
    first, second = slack.url(PATH), slack.url("/services/T0001AAAA/B0003CCCC/other")
    runs = [
        make_execution(slack_action(text=f"a{i}"), secrets={"SLACK_WEBHOOK_URL": first})
        for i in range(3)
    ]
    other = make_execution(slack_action(text="b"), secrets={"SLACK_WEBHOOK_URL": second})

    await asyncio.gather(*(post(r) for r in [*runs, other]))

    to_first = [r for r in slack.requests if r.path == PATH]
    [to_second] = [r for r in slack.requests if r.path != PATH]
    assert [r.json()["text"] for r in to_first] == ["a0", "a1", "a2"]
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(to_first)]
    assert all(gap >= 0.95 for gap in gaps), gaps
    assert to_second.at - to_first[0].at < 0.5


async def test_the_guard_refuses_a_private_webhook_before_posting(
    slack: Receiver, make_execution: MakeExecution
) -> None:
    secrets = {"SLACK_WEBHOOK_URL": slack.url(PATH)}
    refused = make_execution(slack_action(text="hi"), secrets=secrets, guard=AddressGuard(False))
    with pytest.raises(UnsafeURL, match="loopback") as unsafe:
        await post(refused)
    assert TOKEN not in unsafe.value.message
    assert slack.requests == []

    allowed = make_execution(slack_action(text="hi"), secrets=secrets, guard=AddressGuard(True))
    await post(allowed)
    assert len(slack.requests) == 1


def test_the_webhook_label_hides_the_token() -> None:
    label = webhook_label("https://hooks.slack.com/services/T0123ABCD/B0456EFGH/abcdefSECRET")
    assert label == "hooks.slack.com/services/T01…/B04…/***"


async def test_a_slot_beyond_the_attempts_time_is_not_taken() -> None:
    # A burst to one webhook: a post whose turn would come after its attempt's time limit
    # is retried later instead of spending the attempt asleep in the queue.
    pacer = Pacer(0.05)
    with clock.frozen_clock(datetime(2026, 11, 21, 9, 0, tzinfo=UTC)):
        await pacer.wait("hook", max_wait=0.06)  # at once
        await pacer.wait("hook", max_wait=0.06)  # 50 ms later
        with pytest.raises(ActionRetry) as refused:
            await pacer.wait("hook", max_wait=0.06)  # would be 100 ms later
        assert refused.value.retry_after == pytest.approx(0.1)
        await pacer.wait("other", max_wait=0.0)  # another webhook does not queue
        with pytest.raises(ActionRetry) as again:
            await pacer.wait("hook", max_wait=0.06)  # the refused slot was not kept
        assert again.value.retry_after == pytest.approx(0.1)
