"""send-notification and call-webhook with Prefect blocks: blocks saved with Prefect's own
Python API on a real Prefect 3.8 server, read back by tripwire, and the messages arriving
at local receivers (through a TLS-intercepting proxy for services on fixed public hosts)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from datetime import timedelta
from pathlib import Path
from typing import Any

import apprise
import httpx
import pytest

from actions.blocks import read_block
from actions.connections import ConnectionBook
from actions.errors import ActionFailed, ActionRetry, UnsafeURL
from actions.execution import Execution, Outcome
from actions.guard import AddressGuard
from actions.model import CallWebhook, SendNotification
from actions.notify import send_notification
from actions.prefect_api import PrefectAPI, PrefectConnection, PrefectConnections
from actions.prefect_blocks import apprise_message
from actions.webhook import call_webhook
from events import clock
from events.embedded import free_port
from tests.actions.conftest import MakeExecution
from tests.actions.prefect_server import PREFECT_VENV, PrefectServer
from tests.actions.proxies import Certificates, CountingProxy, TlsInterceptor, make_certs
from tests.actions.receivers import Receiver, Reply

pytestmark = pytest.mark.prefect

SCRIPT = Path(__file__).resolve().parent / "prefect_scripts" / "save_blocks.py"
SLACK_TOKEN = "s3cretSlackTok9"
HEADER_SECRET = "hdr-s3cret-77"
CUSTOM_SECRET = "cust-s3cret-42"
FAILED = {
    "event": "prefect.flow-run.Failed",
    "resource": {"prefect.resource.id": "prefect.flow-run.1", "prefect.resource.name": "tuscan"},
}


def save_blocks(server: PrefectServer, home: Path, specs: list[dict[str, Any]]) -> dict[str, str]:
    """Save blocks with Prefect's own classes; their document ids by name."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env |= {"PREFECT_API_URL": server.url, "PREFECT_HOME": str(home), "NO_PROXY": "127.0.0.1"}
    done = subprocess.run(
        [str(PREFECT_VENV / "bin" / "python"), str(SCRIPT), json.dumps(specs)],
        capture_output=True,
        text=True,
        env=env,
        cwd=home,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    ids: dict[str, str] = json.loads(done.stdout.strip().splitlines()[-1])
    return ids


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certs(tmp_path_factory.mktemp("test-ca"))


@pytest.fixture
async def hook() -> AsyncIterator[Receiver]:
    async with Receiver() as receiver:
        yield receiver


Intercept = Callable[[Receiver], AbstractAsyncContextManager[TlsInterceptor]]


@pytest.fixture
def intercept(certs: Certificates, monkeypatch: pytest.MonkeyPatch) -> Intercept:
    """`async with intercept(receiver)`: Apprise's calls to public hosts reach `receiver`."""

    @contextlib.asynccontextmanager
    async def start(receiver: Receiver) -> AsyncIterator[TlsInterceptor]:
        async with TlsInterceptor(receiver, certs) as proxy:
            for name in ("HTTPS_PROXY", "https_proxy"):
                monkeypatch.setenv(name, proxy.url)
            for name in ("NO_PROXY", "no_proxy"):
                monkeypatch.setenv(name, "127.0.0.1,localhost")
            monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certs.ca))
            yield proxy

    return start


def book(server: PrefectServer | str, ttl: timedelta = timedelta(seconds=60)) -> ConnectionBook:
    url = server if isinstance(server, str) else server.url
    connections = PrefectConnections(default=PrefectConnection(api_url=url))
    return ConnectionBook(connections, block_ttl=ttl)


def notification(block_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "type": "send-notification",
        "block_document_id": block_id,
        "subject": "{{ automation.name }}: {{ event.event }}",
        "body": "{{ event.resource['prefect.resource.name'] }} failed",
        **fields,
    }


async def notify(run: Execution) -> Outcome:
    assert isinstance(run.request.action, SendNotification)
    return await send_notification(run.request.action, run)


async def call(run: Execution) -> Outcome:
    assert isinstance(run.request.action, CallWebhook)
    return await call_webhook(run.request.action, run)


def name() -> str:
    return f"b-{uuid.uuid4().hex[:10]}"


# Apprise-based blocks


async def test_a_slack_webhook_block_posts_to_slack_as_prefects_block_does(
    prefect_server: PrefectServer,
    tmp_path: Path,
    hook: Receiver,
    intercept: Intercept,
    make_execution: MakeExecution,
) -> None:
    url = f"https://hooks.slack.com/services/T0TEST/B0TEST/{SLACK_TOKEN}"
    ids = save_blocks(
        prefect_server,
        tmp_path,
        [
            {
                "class": "SlackWebhook",
                "name": "ops",
                "fields": {"url": url, "notify_type": "failure"},
            }
        ],
    )
    run = make_execution(notification(ids["ops"]), FAILED, prefect=book(prefect_server))

    async with intercept(hook) as proxy:
        outcome = await notify(run)

    assert proxy.tunnels == ["hooks.slack.com:443"]
    [request] = hook.requests
    assert request.method == "POST"
    assert request.path == f"/services/T0TEST/B0TEST/{SLACK_TOKEN}"
    assert request.headers["user-agent"] == "Prefect Notifications"  # Prefect's app name
    [attachment] = request.json()["attachments"]
    assert attachment["footer"] == "Prefect Notifications"
    assert attachment["title"] == "etl-watch: prefect.flow-run.Failed"
    assert attachment["text"] == "tuscan failed"
    assert attachment["color"] == apprise.AppriseAsset().color(
        apprise.NotifyType.FAILURE
    )  # notify_type kept
    assert outcome.details["block_type"] == "slack-webhook"
    assert outcome.summary == "notified via Slack (slack-webhook block 'ops')"
    assert SLACK_TOKEN not in repr(outcome)
    assert run.templates.secrets.redact(f"x {url} x") == "x *** x"  # the block's url is masked


async def test_a_discord_webhook_block_posts_to_its_webhook(
    prefect_server: PrefectServer,
    tmp_path: Path,
    hook: Receiver,
    intercept: Intercept,
    make_execution: MakeExecution,
) -> None:
    fields = {"webhook_id": "112233", "webhook_token": "disc-t0ken-s3cret", "botname": "tripbot"}
    ids = save_blocks(
        prefect_server, tmp_path, [{"class": "DiscordWebhook", "name": "d", "fields": fields}]
    )
    run = make_execution(notification(ids["d"]), FAILED, prefect=book(prefect_server))

    async with intercept(hook) as proxy:
        outcome = await notify(run)

    assert proxy.tunnels == ["discord.com:443"]
    [request] = hook.requests
    assert request.path == "/api/webhooks/112233/disc-t0ken-s3cret"
    message = request.json()
    assert message["username"] == "tripbot"
    assert message["tts"] is False
    text = json.dumps(message)
    assert "etl-watch: prefect.flow-run.Failed" in text
    assert "tuscan failed" in text
    assert "disc-t0ken-s3cret" not in repr(outcome)


async def test_a_mattermost_block_is_self_hosted_so_the_guard_checks_its_host(
    prefect_server: PrefectServer, tmp_path: Path, hook: Receiver, make_execution: MakeExecution
) -> None:
    fields = {
        "hostname": "127.0.0.1",
        "port": hook.port,
        "token": "mm-t0ken-s3cret",
        "channels": ["ops"],
    }
    ids = save_blocks(
        prefect_server, tmp_path, [{"class": "MattermostWebhook", "name": "mm", "fields": fields}]
    )
    action = notification(ids["mm"])

    refused = make_execution(
        action, FAILED, prefect=book(prefect_server), guard=AddressGuard(False)
    )
    with pytest.raises(UnsafeURL) as unsafe:
        await notify(refused)
    assert f"http://127.0.0.1:{hook.port} resolves to 127.0.0.1" in unsafe.value.message
    assert hook.requests == []

    run = make_execution(action, FAILED, prefect=book(prefect_server), guard=AddressGuard(True))
    await notify(run)
    [request] = hook.requests
    assert request.path == "/hooks/mm-t0ken-s3cret"
    message = request.json()
    assert message["channel"] == "ops"
    assert "tuscan failed" in message["text"]


async def test_other_apprise_blocks_become_the_apprise_url_of_their_service(
    prefect_server: PrefectServer, tmp_path: Path
) -> None:
    # Twilio, SendGrid, Opsgenie, PagerDuty and Teams only talk to their public hosts:
    # what is checked is the notifier Apprise makes of the URL built from each block.
    teams = (
        "https://prod-00.westus.logic.azure.com:443/workflows/wf123/triggers/manual/paths/"
        "invoke?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=SIGs3cret"
    )
    specs: list[dict[str, Any]] = [
        {
            "class": "MicrosoftTeamsWebhook",
            "name": "teams",
            "fields": {"url": teams, "wrap": False},
        },
        {
            "class": "TwilioSMS",
            "name": "sms",
            "fields": {
                "account_sid": "AC" + "a" * 32,
                "auth_token": "t" * 32,
                "from_phone_number": "+15551234567",
                "to_phone_numbers": ["+15557654321", "+15550000000"],
            },
        },
        {
            "class": "SendgridEmail",
            "name": "mail",
            "fields": {
                "api_key": "SG.key",
                "sender_email": "ops@example.com",
                "to_emails": ["a@example.com"],
            },
        },
        {
            "class": "OpsgenieWebhook",
            "name": "genie",
            "fields": {
                "apikey": "genie-key",
                "target_team": ["sre"],
                "region_name": "eu",
                "priority": 4,
            },
        },
        {
            "class": "PagerDutyWebHook",
            "name": "pd",
            "fields": {"integration_key": "intkey", "api_key": "apikey", "component": "etl"},
        },
    ]
    ids = save_blocks(prefect_server, tmp_path, specs)
    plugins: dict[str, Any] = {}
    async with httpx.AsyncClient() as client:
        api = PrefectAPI(client, PrefectConnection(api_url=prefect_server.url))
        for spec in specs:
            block = await read_block(api, uuid.UUID(ids[spec["name"]]))
            message = apprise_message(block, "Subject here", "Body text")
            plugins[spec["name"]] = (apprise.Apprise.instantiate(message.url), message)

    teams_plugin, _ = plugins["teams"]
    assert "workflow" in teams_plugin.secure_protocol
    assert "wrap=no" in teams_plugin.url(privacy=False)
    assert "SIGs3cret" in teams_plugin.url(privacy=False)
    sms, _ = plugins["sms"]
    assert sms.service_name == "Twilio"
    assert sms.source == "+15551234567"
    assert sorted(number for _, number in sms.targets) == ["+15550000000", "+15557654321"]
    mail, _ = plugins["mail"]
    assert mail.service_name == "SendGrid"
    assert mail.from_email == "ops@example.com"
    assert mail.targets == ["a@example.com"]
    genie, _ = plugins["genie"]
    assert genie.service_name == "Opsgenie"
    assert genie.region_name == "eu"
    assert "#sre" in genie.url(privacy=False) or "%23sre" in genie.url(privacy=False)
    pagerduty, pd_message = plugins["pd"]
    assert pagerduty.service_name == "Pager Duty"
    assert pagerduty.component == "etl"
    # As in Prefect: the subject is the alert, the body goes into its custom details.
    assert pagerduty.details == {"Prefect Notification Body": "Body text"}
    assert pd_message.body == " "


# Custom Webhook


async def test_a_custom_webhook_block_fills_in_subject_body_name_and_its_secrets(
    prefect_server: PrefectServer, tmp_path: Path, hook: Receiver, make_execution: MakeExecution
) -> None:
    fields = {
        "name": "ops-hook",
        "url": hook.url("/notify/{{ tok }}"),
        "method": "PUT",
        "params": {"channel": "{{name}}"},
        "json_data": {"text": "{{subject}}\n{{body}}", "title": "{{name}}", "token": "{{tok}}"},
        "headers": {"Authorization": "Bearer {{tok}}"},
        "cookies": {"session": "{{tok}}"},
        "secrets": {"tok": CUSTOM_SECRET},
    }
    ids = save_blocks(
        prefect_server,
        tmp_path,
        [{"class": "CustomWebhookNotificationBlock", "name": "custom", "fields": fields}],
    )
    run = make_execution(notification(ids["custom"]), FAILED, prefect=book(prefect_server))

    outcome = await notify(run)

    [request] = hook.requests
    assert request.method == "PUT"
    assert request.path == f"/notify/{CUSTOM_SECRET}"
    assert request.query == "channel=ops-hook"
    assert request.json() == {
        "text": "etl-watch: prefect.flow-run.Failed\ntuscan failed",
        "title": "ops-hook",
        "token": CUSTOM_SECRET,
    }
    assert request.headers["authorization"] == f"Bearer {CUSTOM_SECRET}"
    assert request.headers["cookie"] == f"session={CUSTOM_SECRET}"
    assert outcome.summary == (
        f"PUT http://127.0.0.1:{hook.port}/… (custom-webhook block 'custom') → 200 OK"
    )
    assert CUSTOM_SECRET not in repr(outcome)
    assert run.templates.secrets.redact(CUSTOM_SECRET) == "***"


async def test_a_custom_webhook_placeholder_it_cannot_fill_fails_naming_it(
    prefect_server: PrefectServer, tmp_path: Path, hook: Receiver, make_execution: MakeExecution
) -> None:
    # Prefect itself refuses to save such a block, so the document is written over the API.
    ids = save_blocks(
        prefect_server,
        tmp_path,
        [
            {
                "class": "CustomWebhookNotificationBlock",
                "name": "typo",
                "fields": {"name": "n", "url": hook.url("/x"), "json_data": {"t": "{{body}}"}},
            }
        ],
    )
    async with httpx.AsyncClient() as client:
        patched = await client.patch(
            f"{prefect_server.url}/block_documents/{ids['typo']}",
            json={"data": {"name": "n", "url": hook.url("/x"), "json_data": {"t": "{{bdy}}"}}},
        )
        assert patched.status_code == 204, patched.text
    run = make_execution(notification(ids["typo"]), FAILED, prefect=book(prefect_server))

    with pytest.raises(ActionFailed) as failed:
        await notify(run)

    assert failed.value.message == (
        "custom-webhook block 'typo': json_data.t uses {{bdy}}, which is not subject, body, "
        "name or one of the block's secrets; add it to the block's secrets"
    )
    assert hook.requests == []


# Webhook (call-webhook)


async def test_call_webhook_sends_its_payload_to_a_webhook_block(
    prefect_server: PrefectServer, tmp_path: Path, hook: Receiver, make_execution: MakeExecution
) -> None:
    fields = {
        "url": hook.url("/in/hook-path-s3cret"),
        "method": "PUT",
        "headers": {"X-Token": HEADER_SECRET},
    }
    ids = save_blocks(
        prefect_server, tmp_path, [{"class": "Webhook", "name": "wh", "fields": fields}]
    )
    action = {
        "type": "call-webhook",
        "block_document_id": ids["wh"],
        "payload": '{"run": "{{ event.resource[\'prefect.resource.name\'] }}"}',
    }
    run = make_execution(action, FAILED, prefect=book(prefect_server))

    outcome = await call(run)

    [request] = hook.requests
    assert request.method == "PUT"
    assert request.path == "/in/hook-path-s3cret"
    assert request.headers["x-token"] == HEADER_SECRET
    assert request.json() == {"run": "tuscan"}
    assert request.headers["idempotency-key"] == str(run.request.id)
    assert outcome.summary == f"PUT http://127.0.0.1:{hook.port}/… (webhook block 'wh') → 200 OK"
    assert "s3cret" not in repr(outcome)


async def test_a_webhook_block_url_is_guarded(
    prefect_server: PrefectServer, tmp_path: Path, hook: Receiver, make_execution: MakeExecution
) -> None:
    fields = {"url": hook.url("/in")}
    ids = save_blocks(
        prefect_server, tmp_path, [{"class": "Webhook", "name": "wh", "fields": fields}]
    )
    action = {"type": "call-webhook", "block_document_id": ids["wh"]}
    run = make_execution(action, prefect=book(prefect_server), guard=AddressGuard(False))

    with pytest.raises(UnsafeURL) as unsafe:
        await call(run)

    assert unsafe.value.message.startswith(
        f"call-webhook (webhook block 'wh') url: http://127.0.0.1:{hook.port} resolves to "
    )
    assert hook.requests == []


# Errors


async def test_a_block_type_tripwire_cannot_run_fails_naming_it_and_what_to_use(
    prefect_server: PrefectServer, tmp_path: Path, make_execution: MakeExecution
) -> None:
    ids = save_blocks(
        prefect_server,
        tmp_path,
        [
            {"class": "Secret", "name": "pw", "fields": {"value": "not-a-notifier"}},
            {
                "class": "SlackWebhook",
                "name": "sl",
                "fields": {"url": "https://hooks.slack.com/services/A/B/C"},
            },
        ],
    )
    run = make_execution(notification(ids["pw"]), FAILED, prefect=book(prefect_server))
    with pytest.raises(ActionFailed) as failed:
        await notify(run)
    assert failed.value.message == (
        "block type 'secret' (block 'pw') is not supported by tripwire's send-notification; "
        "use url: with an Apprise URL"
    )
    assert "not-a-notifier" not in failed.value.message

    action = {"type": "call-webhook", "block_document_id": ids["sl"]}
    run = make_execution(action, prefect=book(prefect_server))
    with pytest.raises(ActionFailed, match="call-webhook takes Prefect's Webhook block"):
        await call(run)


async def test_a_missing_block_fails_naming_it_and_the_server(
    prefect_server: PrefectServer, make_execution: MakeExecution
) -> None:
    missing = uuid.uuid4()
    run = make_execution(notification(str(missing)), FAILED, prefect=book(prefect_server))

    with pytest.raises(ActionFailed) as failed:
        await notify(run)

    assert not isinstance(failed.value, ActionRetry)
    assert failed.value.status_code == 404
    assert failed.value.message.startswith(
        f"block document {missing} not found on {prefect_server.url}; check block_document_id"
    )


async def test_an_unreachable_prefect_server_is_retried(make_execution: MakeExecution) -> None:
    url = f"http://127.0.0.1:{free_port()}/api"
    run = make_execution(notification(str(uuid.uuid4())), FAILED, prefect=book(url))

    with pytest.raises(ActionRetry, match=f"Prefect at {url} was unreachable"):
        await notify(run)


async def test_a_prefect_server_refusing_the_credentials_fails_saying_so(
    hook: Receiver, make_execution: MakeExecution
) -> None:
    hook.script(Reply(401, '{"detail": "Unauthorized"}', {"content-type": "application/json"}))
    run = make_execution(notification(str(uuid.uuid4())), FAILED, prefect=book(hook.url("/api")))

    with pytest.raises(ActionFailed) as failed:
        await notify(run)

    assert not isinstance(failed.value, ActionRetry)
    assert failed.value.status_code == 401
    assert "Unauthorized" in failed.value.message
    assert failed.value.message.endswith("check the connection's api_key or auth_string")
    [request] = hook.requests
    assert request.query == "include_secrets=true"


async def test_without_a_prefect_server_a_block_cannot_be_read(
    make_execution: MakeExecution,
) -> None:
    run = make_execution(notification(str(uuid.uuid4())), FAILED, prefect=PrefectConnections())
    with pytest.raises(ActionFailed, match="no Prefect server configured"):
        await notify(run)


# The cache


async def test_a_block_is_read_once_within_its_ttl_and_again_after(
    prefect_server: PrefectServer, tmp_path: Path, hook: Receiver, make_execution: MakeExecution
) -> None:
    fields = {"url": hook.url("/in")}
    ids = save_blocks(
        prefect_server, tmp_path, [{"class": "Webhook", "name": "wh", "fields": fields}]
    )
    action = {"type": "call-webhook", "block_document_id": ids["wh"]}
    path = f"GET /api/block_documents/{ids['wh']}"
    async with CountingProxy(prefect_server.url) as proxy:
        shared = book(proxy.url, ttl=timedelta(seconds=60))
        with clock.frozen_clock() as frozen:
            # A burst: five firings at once read the block once.
            runs = [make_execution(action, prefect=shared) for _ in range(5)]
            await asyncio.gather(*(call(run) for run in runs))
            assert proxy.requests[path] == 1
            frozen.advance(timedelta(seconds=59))
            await call(make_execution(action, prefect=shared))
            assert proxy.requests[path] == 1
            frozen.advance(timedelta(seconds=1))
            await call(make_execution(action, prefect=shared))
            assert proxy.requests[path] == 2
    assert len(hook.requests) == 7
