"""send-email-notification: Prefect Cloud's email action, sent through the user's own SMTP
server with Apprise's mailto:// (plain or STARTTLS) and mailtos:// (TLS) URLs.

The SMTP URL carries the password, so it comes from a secret and errors name only the
server the SSRF guard checked. The recipients are set on the URL (`to=`), replacing any
there, so one URL serves every automation.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from actions.errors import ActionFailed
from actions.execution import Execution, Executor, Outcome
from actions.model import SendEmailNotification
from actions.notify import deliver

SCHEMES = ("mailto", "mailtos")
SMTP_HINT = (
    "give an Apprise mailto:// or mailtos:// URL with the sender, e.g. "
    "mailtos://user:password@smtp.example.com?from=alerts@example.com, in the secret "
    "SMTP_URL or in smtp:"
)


def recipients(action: SendEmailNotification, run: Execution) -> list[str]:
    """The rendered addresses; one that cannot be an address fails, naming its place."""
    addresses: list[str] = []
    for index, source in enumerate(action.emails):
        field = f"send-email-notification emails[{index}]"
        address = run.render(source, field).strip()
        local, at, domain = address.rpartition("@")
        if not (at and local and domain) or any(c in address for c in " ,;<>\r\n"):
            raise ActionFailed(f"{field}: {address!r} is not an email address")
        addresses.append(address)
    return addresses


def with_recipients(smtp: str, addresses: list[str]) -> str:
    """The SMTP URL with `to=` set to `addresses`."""
    parts = urlsplit(smtp)
    if parts.scheme.lower() not in SCHEMES or not parts.netloc:
        shown = f"a {parts.scheme}:// URL" if parts.scheme else "not a URL"
        raise ActionFailed(f"send-email-notification smtp: {shown}; {SMTP_HINT}")
    query = [(key, value) for key, value in parse_qsl(parts.query) if key.lower() != "to"]
    query.append(("to", ",".join(addresses)))
    return urlunsplit(parts._replace(query=urlencode(query, safe="@,")))


async def send_email(action: SendEmailNotification, run: Execution) -> Outcome:
    """Render the recipients, subject, body and SMTP URL, and send one message."""
    addresses = recipients(action, run)
    smtp = run.render(action.smtp, "send-email-notification smtp").strip()
    url = with_recipients(smtp, addresses)
    subject = run.render(action.subject, "send-email-notification subject")
    body = run.render(action.body, "send-email-notification body")
    outcome = await deliver(url, subject, body, run, "send-email-notification smtp")
    return Outcome(
        summary=f"emailed {len(addresses)} recipient{'s' if len(addresses) > 1 else ''} "
        f"({outcome.summary.removeprefix('notified ')})",
        details={**outcome.details, "recipients": addresses},
    )


EMAIL_EXECUTORS: dict[str, Executor] = {"send-email-notification": send_email}
