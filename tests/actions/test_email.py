"""send-email-notification through Apprise to a real local SMTP server (aiosmtpd)."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

from actions.email import send_email
from actions.errors import ActionFailed, ActionRetry, UnsafeURL
from actions.execution import Execution, Outcome
from actions.guard import AddressGuard
from actions.model import SendEmailNotification
from events.embedded import free_port
from tests.actions.conftest import ACTION, MakeExecution
from tests.actions.test_live import failed_run, ledger_status, on_failure
from tests.support import StartEngine
from tests.triggers.test_live import post

FAILED = {
    "event": "prefect.flow-run.Failed",
    "resource": {"prefect.resource.id": "prefect.flow-run.1", "prefect.resource.name": "tuscan"},
}
PASSWORD = "smtp-pw-s3cret"


@dataclass
class Mailbox:
    """What the SMTP server accepted: messages with their envelopes, and logins."""

    port: int
    envelopes: list[tuple[str, list[str], EmailMessage]] = field(default_factory=list)
    logins: list[tuple[str, str]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        content = envelope.content if isinstance(envelope.content, bytes) else b""
        message = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.envelopes.append((str(envelope.mail_from), list(envelope.rcpt_tos), message))
        return "250 OK"

    def authenticate(
        self, server: Any, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        login, password = data.login.decode(), data.password.decode()
        self.logins.append((login, password))
        return AuthResult(success=password == PASSWORD)

    def text(self, index: int) -> str:
        body = self.envelopes[index][2].get_body(preferencelist=("plain",))
        assert body is not None
        return str(body.get_content())


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    box = Mailbox(port=free_port())
    server = Controller(
        box,
        hostname="127.0.0.1",
        port=box.port,
        authenticator=box.authenticate,
        auth_require_tls=False,  # a local test server; production uses mailtos://
    )
    server.start()
    try:
        yield box
    finally:
        server.stop()


def email_action(**fields: Any) -> dict[str, Any]:
    return {
        "type": "send-email-notification",
        "emails": [
            "oncall@example.com",
            "{{ event.resource['prefect.resource.name'] }}@example.com",
        ],
        "subject": "{{ automation.name }}: {{ event.event }}",
        "body": "{{ event.resource['prefect.resource.name'] }} failed",
        **fields,
    }


def smtp_url(box: Mailbox, auth: str = "") -> str:
    return f"mailto://{auth}127.0.0.1:{box.port}?from=tripwire@example.com"


async def send(run: Execution) -> Outcome:
    assert isinstance(run.request.action, SendEmailNotification)
    return await send_email(run.request.action, run)


async def test_each_recipient_gets_the_rendered_subject_and_body(
    mailbox: Mailbox, make_execution: MakeExecution
) -> None:
    run = make_execution(email_action(), FAILED, secrets={"SMTP_URL": smtp_url(mailbox)})

    outcome = await send(run)

    recipients = sorted(rcpt for _, rcpts, _ in mailbox.envelopes for rcpt in rcpts)
    assert recipients == ["oncall@example.com", "tuscan@example.com"]
    sender, _, message = mailbox.envelopes[0]
    assert sender == "tripwire@example.com"
    assert message["Subject"] == "etl-watch: prefect.flow-run.Failed"
    assert mailbox.text(0).strip() == "tuscan failed"
    assert outcome.summary.startswith("emailed 2 recipients")
    assert outcome.details["recipients"] == ["oncall@example.com", "tuscan@example.com"]


async def test_recipients_on_the_smtp_url_are_replaced_by_emails(
    mailbox: Mailbox, make_execution: MakeExecution
) -> None:
    url = smtp_url(mailbox) + "&to=someone-else@example.com"
    run = make_execution(
        email_action(emails=["oncall@example.com"]), FAILED, secrets={"SMTP_URL": url}
    )

    await send(run)

    assert [rcpts for _, rcpts, _ in mailbox.envelopes] == [["oncall@example.com"]]


async def test_the_password_logs_in_and_appears_nowhere(
    mailbox: Mailbox, make_execution: MakeExecution
) -> None:
    url = smtp_url(mailbox, auth="alerts:{{ secret('SMTP_PASSWORD') }}@")
    run = make_execution(email_action(smtp=url), FAILED, secrets={"SMTP_PASSWORD": PASSWORD})

    outcome = await send(run)

    assert mailbox.logins == [("alerts", PASSWORD)]
    assert len(mailbox.envelopes) == 2
    assert PASSWORD not in repr(outcome)


async def test_an_unreachable_server_is_retried_without_the_password(
    make_execution: MakeExecution,
) -> None:
    password = "{{ secret('SMTP_PASSWORD') }}"
    url = f"mailto://alerts:{password}@127.0.0.1:{free_port()}?from=t@example.com"
    run = make_execution(email_action(smtp=url), FAILED, secrets={"SMTP_PASSWORD": PASSWORD})

    with pytest.raises(ActionRetry, match=r"send-email-notification via .*127\.0\.0\.1") as caught:
        await send(run)

    assert PASSWORD not in caught.value.message


@pytest.mark.parametrize(
    ("emails", "wrong"),
    [
        (["oncall@example.com", "not-an-address"], "emails[1]: 'not-an-address'"),
        (["a@example.com, b@example.com"], "emails[0]"),
        (["{{ event.resource['prefect.resource.name'] }}"], "emails[0]: 'tuscan'"),
    ],
)
async def test_a_bad_address_fails_naming_it(
    emails: list[str], wrong: str, mailbox: Mailbox, make_execution: MakeExecution
) -> None:
    run = make_execution(
        email_action(emails=emails), FAILED, secrets={"SMTP_URL": smtp_url(mailbox)}
    )

    with pytest.raises(ActionFailed, match="is not an email address") as caught:
        await send(run)

    assert wrong in caught.value.message
    assert mailbox.envelopes == []


@pytest.mark.parametrize(
    ("smtp", "said"),
    [
        ("https://smtp.example.com", "a https:// URL"),
        ("smtp.example.com:587", "a smtp.example.com:// URL"),
        ("mailto:", "a mailto:// URL"),
    ],
)
async def test_an_smtp_setting_that_is_not_a_mail_url_fails_with_the_fix(
    smtp: str, said: str, make_execution: MakeExecution
) -> None:
    run = make_execution(email_action(smtp=smtp), FAILED)

    with pytest.raises(ActionFailed, match="give an Apprise mailto:// or mailtos:// URL") as caught:
        await send(run)

    assert said in caught.value.message


async def test_without_the_smtp_secret_it_says_where_to_set_it(
    make_execution: MakeExecution,
) -> None:
    run = make_execution(email_action(), FAILED)

    with pytest.raises(ActionFailed, match="secret 'SMTP_URL' is not set"):
        await send(run)


async def test_a_private_smtp_server_is_refused_by_the_guard(
    mailbox: Mailbox, make_execution: MakeExecution
) -> None:
    run = make_execution(
        email_action(),
        FAILED,
        secrets={"SMTP_URL": smtp_url(mailbox)},
        guard=AddressGuard(allow_private=False),
    )

    with pytest.raises(UnsafeURL, match="send-email-notification smtp"):
        await send(run)

    assert mailbox.envelopes == []


def test_prefect_clouds_exported_action_loads() -> None:
    exported = {
        "type": "send-email-notification",
        "block_document_id": "fadb8b18-344a-4441-905d-caeb70d0832b",
        "emails": ["data-team@example.com"],
        "subject": "Flow run failed: {{ event.resource['prefect.resource.name'] }}",
        "body": "{{ flow_run.name }} failed",
    }

    action = ACTION.validate_python(exported)

    assert isinstance(action, SendEmailNotification)
    assert action.smtp == "{{ secret('SMTP_URL') }}"


def test_no_recipients_is_refused_naming_the_field() -> None:
    with pytest.raises(ValueError, match="emails"):
        ACTION.validate_python({"type": "send-email-notification", "emails": [], "body": "x"})


async def test_a_firing_emails_through_the_engine_once(
    mailbox: Mailbox, start_engine: StartEngine, tmp_path: Path
) -> None:
    secrets = tmp_path / "secrets"
    secrets.write_text(f"SMTP_URL={smtp_url(mailbox)}\n")
    running = await start_engine(allow_private_urls=True, secrets_file=secrets)
    automation = on_failure("http://unused.invalid")
    automation["actions"] = [email_action(emails=["oncall@example.com"])]
    async with running.client() as client:
        answer = await client.post("/api/automations/", json=automation)
        assert answer.status_code == 201, answer.text
    await post(running, failed_run())

    (entry,) = await ledger_status(running, "succeeded")
    assert entry["result"].startswith("emailed 1 recipient")
    ((sender, recipients, message),) = mailbox.envelopes
    assert sender == "tripwire@example.com"
    assert recipients == ["oncall@example.com"]
    assert message["Subject"] == "tell-ops: prefect.flow-run.Failed"
    assert mailbox.text(0).strip() == "nightly-7 failed"
