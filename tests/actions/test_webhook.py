"""call-webhook against a real local receiver: rendering, answers, timeouts, signatures."""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import AsyncIterator
from typing import Any
from uuid import uuid4

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from actions.errors import ActionFailed, ActionRetry, UnsafeURL
from actions.execution import Execution, Outcome
from actions.guard import AddressGuard
from actions.model import CallWebhook
from actions.webhook import call_webhook
from events.embedded import free_port
from tests.actions.conftest import MakeExecution
from tests.actions.receivers import Receiver, Reply

SIGNING_SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
LOADED = {
    "event": "etl.load.finished",
    "resource": {"prefect.resource.id": "etl.table.orders", "prefect.resource.name": "orders"},
    "payload": {"rows": 1200, "complete": True, "tables": ["orders", "items"], "ratio": 0.5},
}


async def call(run: Execution) -> Outcome:
    assert isinstance(run.request.action, CallWebhook)
    return await call_webhook(run.request.action, run)


@pytest.fixture
async def hook() -> AsyncIterator[Receiver]:
    async with Receiver(Reply(200, "", {"content-type": "application/json"})) as receiver:
        yield receiver


def webhook(url: str, **fields: Any) -> dict[str, Any]:
    return {"type": "call-webhook", "url": url, **fields}


async def test_method_headers_and_json_are_rendered_keeping_json_types(
    hook: Receiver, make_execution: MakeExecution
) -> None:
    action = webhook(
        hook.url("/loads/{{ event.resource['prefect.resource.name'] }}?token={{ secret('T') }}"),
        method="PUT",
        headers={"Authorization": "Bearer {{ secret('T') }}", "X-Event": "{{ event.event }}"},
        json={
            "rows": "{{ event.payload.rows }}",
            "complete": "{{ event.payload.complete }}",
            "tables": "{{ event.payload.tables }}",
            "ratio": "{{ event.payload.ratio }}",
            "note": "{{ event.payload.rows }} rows",
            "fixed": 3,
        },
    )
    run = make_execution(action, LOADED, secrets={"T": "tok-s3cret"})

    outcome = await call(run)

    [request] = hook.requests
    assert request.method == "PUT"
    assert request.path == "/loads/orders"
    assert request.query == "token=tok-s3cret"
    assert request.headers["authorization"] == "Bearer tok-s3cret"
    assert request.headers["x-event"] == "etl.load.finished"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["idempotency-key"] == str(run.request.id)
    assert request.json() == {
        "rows": 1200,
        "complete": True,
        "tables": ["orders", "items"],
        "ratio": 0.5,
        "note": "1200 rows",
        "fixed": 3,
    }
    assert outcome.status_code == 200
    # No query string: that is where tokens go.
    assert outcome.summary == f"PUT http://127.0.0.1:{hook.port}/loads/orders → 200 OK"
    assert "s3cret" not in repr(outcome)


async def test_prefects_payload_is_sent_as_rendered_text(
    hook: Receiver, make_execution: MakeExecution
) -> None:
    action = webhook(
        hook.url("/hook"),
        headers={"Content-Type": "text/plain"},
        payload="{{ event.resource['prefect.resource.name'] }} loaded {{ event.payload.rows }}",
    )
    run = make_execution(action, LOADED)
    await call(run)

    [request] = hook.requests
    assert request.method == "POST"
    assert request.text == "orders loaded 1200"
    assert request.headers["content-type"] == "text/plain"


@pytest.mark.parametrize("status", [400, 401, 404, 422])
async def test_a_4xx_answer_is_a_permanent_failure(
    hook: Receiver, make_execution: MakeExecution, status: int
) -> None:
    hook.script(Reply(status, "no such hook"))
    run = make_execution(webhook(hook.url("/hook?key=s3cret"), json={"a": 1}))

    with pytest.raises(ActionFailed) as failed:
        await call(run)

    assert not isinstance(failed.value, ActionRetry)
    assert failed.value.status_code == status
    assert f"POST http://127.0.0.1:{hook.port}/hook answered {status}" in failed.value.message
    assert "no such hook" in failed.value.message
    assert "s3cret" not in failed.value.message


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_a_5xx_answer_is_retried(
    hook: Receiver, make_execution: MakeExecution, status: int
) -> None:
    hook.script(Reply(status, "down", {"Retry-After": "30"}))
    run = make_execution(webhook(hook.url("/hook")))

    with pytest.raises(ActionRetry) as retry:
        await call(run)
    assert retry.value.status_code == status
    assert retry.value.retry_after == 30


async def test_a_redirect_is_not_followed(hook: Receiver, make_execution: MakeExecution) -> None:
    hook.script(Reply(302, "", {"Location": "http://169.254.169.254/latest/meta-data/"}))
    run = make_execution(webhook(hook.url("/hook")))

    with pytest.raises(ActionFailed, match="answered 302"):
        await call(run)
    assert len(hook.requests) == 1


async def test_a_receiver_that_does_not_answer_in_time_is_retried(
    hook: Receiver, make_execution: MakeExecution
) -> None:
    hook.script(Reply(hang=True))
    run = make_execution(webhook(hook.url("/slow"), timeout=0.3))

    with pytest.raises(ActionRetry, match=r"POST http://127\.0\.0\.1:\d+/slow timed out"):
        await call(run)


async def test_an_unreachable_receiver_is_retried(make_execution: MakeExecution) -> None:
    run = make_execution(webhook(f"http://127.0.0.1:{free_port()}/hook"))
    with pytest.raises(ActionRetry, match="was unreachable"):
        await call(run)


async def test_a_signed_call_verifies_with_standard_webhooks_and_keeps_its_id_on_retry(
    hook: Receiver, make_execution: MakeExecution
) -> None:
    action = webhook(
        hook.url("/signed"),
        json={"rows": "{{ event.payload.rows }}", "name": "ünïcode"},
        signing_secret="{{ secret('HOOK_SECRET') }}",
    )
    first = make_execution(action, LOADED, secrets={"HOOK_SECRET": SIGNING_SECRET})
    second = dataclasses.replace(first, attempt=2)  # a retry of the same request

    await call(first)
    await call(second)

    for request in hook.requests:
        assert Webhook(SIGNING_SECRET).verify(request.body, request.headers) == {
            "rows": 1200,
            "name": "ünïcode",
        }
        assert request.headers["webhook-id"] == str(first.request.id)
        assert request.headers["idempotency-key"] == str(first.request.id)
        assert request.headers["webhook-signature"].startswith("v1,")
    wrong = "whsec_" + base64.b64encode(b"w" * 32).decode()
    with pytest.raises(WebhookVerificationError):
        Webhook(wrong).verify(hook.requests[0].body, hook.requests[0].headers)


@pytest.mark.parametrize("secret", ["hunter2", "whsec_c2hvcnQ=", "whsec_not*base64!"])
async def test_a_secret_that_is_not_a_standard_webhooks_secret_is_refused(
    hook: Receiver, make_execution: MakeExecution, secret: str
) -> None:
    run = make_execution(webhook(hook.url("/signed"), signing_secret=secret))
    with pytest.raises(ActionFailed, match="not a Standard Webhooks secret"):
        await call(run)
    assert hook.requests == []


async def test_a_header_rendered_with_a_line_break_is_refused(
    hook: Receiver, make_execution: MakeExecution
) -> None:
    action = webhook(hook.url("/hook"), headers={"X-Name": "{{ event.payload.name }}"})
    event = {**LOADED, "payload": {"name": "a\r\nX-Injected: 1"}}
    run = make_execution(action, event)
    with pytest.raises(ActionFailed, match=r"headers\.X-Name: the rendered value has a line"):
        await call(run)
    assert hook.requests == []


async def test_a_prefect_webhook_block_needs_a_prefect_server(
    make_execution: MakeExecution,
) -> None:
    run = make_execution({"type": "call-webhook", "block_document_id": str(uuid4())})
    with pytest.raises(
        ActionFailed, match="no Prefect server configured: set TRIPWIRE_PREFECT_API_URL"
    ):
        await call(run)


async def test_the_guard_refuses_a_private_url_and_allow_private_lets_it_through(
    hook: Receiver, make_execution: MakeExecution
) -> None:
    action = webhook(hook.url("/hook/s3cret"))
    refused = make_execution(action, guard=AddressGuard(allow_private=False))
    with pytest.raises(UnsafeURL) as unsafe:
        await call(refused)
    assert unsafe.value.message == (
        f"call-webhook url: http://127.0.0.1:{hook.port} resolves to 127.0.0.1, a loopback "
        "address; automations may not call private addresses "
        "(set TRIPWIRE_ALLOW_PRIVATE_URLS=true to allow)"
    )
    assert hook.requests == []

    allowed = make_execution(action, guard=AddressGuard(allow_private=True))
    await call(allowed)
    assert len(hook.requests) == 1


async def test_cookies_an_answer_sets_are_not_sent_with_later_calls(
    make_execution: MakeExecution,
) -> None:
    session = Reply(200, "ok", {"set-cookie": "session=abc; Path=/"})
    async with Receiver(session) as target:
        await call(make_execution(webhook(target.url("/first")), LOADED))
        await call(make_execution(webhook(target.url("/second")), LOADED))

    first, second = target.requests
    assert second.path == "/second"
    assert "cookie" not in first.headers
    assert "cookie" not in second.headers
