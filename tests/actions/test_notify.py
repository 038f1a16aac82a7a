"""send-notification through Apprise, delivered over real HTTP to a local receiver."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from uuid import uuid4

import pytest

from actions.errors import ActionFailed, ActionRetry, UnsafeURL
from actions.execution import Execution, Outcome
from actions.guard import AddressGuard
from actions.model import SendNotification
from actions.notify import send_notification
from tests.actions.conftest import MakeExecution
from tests.actions.receivers import Receiver, Reply

FAILED = {
    "event": "prefect.flow-run.Failed",
    "resource": {"prefect.resource.id": "prefect.flow-run.1", "prefect.resource.name": "tuscan"},
}


async def notify(run: Execution) -> Outcome:
    assert isinstance(run.request.action, SendNotification)
    return await send_notification(run.request.action, run)


@pytest.fixture
async def endpoint() -> AsyncIterator[Receiver]:
    async with Receiver() as receiver:
        yield receiver


def notification(url: str, **fields: Any) -> dict[str, Any]:
    return {
        "type": "send-notification",
        "url": url,
        "subject": "{{ automation.name }}: {{ event.event }}",
        "body": "{{ event.resource['prefect.resource.name'] }} failed",
        **fields,
    }


def json_url(endpoint: Receiver) -> str:
    return f"json://apprise:{{{{ secret('PASSWORD') }}}}@127.0.0.1:{endpoint.port}/notify"


async def test_a_json_url_delivers_the_rendered_title_and_body(
    endpoint: Receiver, make_execution: MakeExecution
) -> None:
    run = make_execution(
        notification(json_url(endpoint)),
        FAILED,
        secrets={"PASSWORD": "pw-s3cret"},
        guard=AddressGuard(allow_private=True),
    )

    outcome = await notify(run)

    [request] = await endpoint.wait_for(1)
    assert request.method == "POST"
    assert request.path == "/notify"
    message = request.json()
    assert message["title"] == "etl-watch: prefect.flow-run.Failed"
    assert message["message"] == "tuscan failed"
    assert outcome.summary == f"notified via JSON (http://127.0.0.1:{endpoint.port})"
    assert "pw-s3cret" not in repr(outcome)


async def test_a_private_self_hosted_host_is_refused_by_the_guard(
    endpoint: Receiver, make_execution: MakeExecution
) -> None:
    run = make_execution(
        notification(json_url(endpoint)),
        FAILED,
        secrets={"PASSWORD": "pw-s3cret"},
        guard=AddressGuard(allow_private=False),
    )

    with pytest.raises(UnsafeURL) as unsafe:
        await notify(run)

    assert unsafe.value.message.startswith(
        f"send-notification url (json:// host): http://127.0.0.1:{endpoint.port} resolves to "
        "127.0.0.1, a loopback address"
    )
    assert "pw-s3cret" not in unsafe.value.message
    assert endpoint.requests == []


async def test_a_failed_delivery_is_retried_with_apprises_reason(
    endpoint: Receiver, make_execution: MakeExecution
) -> None:
    endpoint.script(Reply(500, "boom"))
    run = make_execution(
        notification(json_url(endpoint)),
        FAILED,
        secrets={"PASSWORD": "pw-s3cret"},
        guard=AddressGuard(allow_private=True),
    )

    with pytest.raises(ActionRetry) as retry:
        await notify(run)

    assert retry.value.message.startswith(
        f"send-notification via JSON (http://127.0.0.1:{endpoint.port}) failed: "
    )
    assert "500" in retry.value.message
    assert "pw-s3cret" not in retry.value.message


@pytest.mark.parametrize("url", ["nosuchservice://token-s3cret@host/x", "json://", "not a url"])
async def test_a_url_apprise_does_not_recognise_fails_showing_only_the_scheme(
    make_execution: MakeExecution, url: str
) -> None:
    run = make_execution(notification(url), FAILED)

    with pytest.raises(ActionFailed) as failed:
        await notify(run)

    assert "Apprise did not recognise this" in failed.value.message
    assert "s3cret" not in failed.value.message
    assert not isinstance(failed.value, ActionRetry)


async def test_a_cloud_service_url_is_not_guarded(make_execution: MakeExecution) -> None:
    # discord:// goes to discord.com, a fixed public host: the guard is not consulted.
    class Refuse:
        async def check(self, url: str, field: str) -> None:
            raise AssertionError(f"guarded {url}")

    run = make_execution(notification("discord://1234/abcdefg"), FAILED, guard=Refuse())
    # No network here, so delivery fails, but only after the guard was skipped.
    with pytest.raises(ActionRetry, match="via Discord"):
        await notify(run)


async def test_a_prefect_notification_block_needs_a_prefect_server(
    make_execution: MakeExecution,
) -> None:
    action = {"type": "send-notification", "block_document_id": str(uuid4()), "body": "x"}
    run = make_execution(action)
    with pytest.raises(
        ActionFailed, match="no Prefect server configured: set TRIPWIRE_PREFECT_API_URL"
    ):
        await notify(run)
