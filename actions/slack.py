"""send-slack: post to a Slack incoming webhook.

The webhook URL is itself the credential, so it never appears in an outcome or an
error: it is shown as `hooks.slack.com/services/T01…/B02…/***`. Slack allows about one
message per second per webhook, so posts to one URL are paced in this process.
Without text and blocks the message is a summary of the firing (`default_message`).
"""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from actions.errors import ActionFailed, ActionRetry
from actions.execution import Execution, Executor, Outcome
from actions.http import RETRYABLE_STATUS, retry_after, transport_error
from actions.model import SendSlack
from actions.request import ActionRequest, AlertNotice, FiringState
from events import clock
from events.model import Event

SLACK_INTERVAL = 1.0  # seconds between posts to one webhook (Slack's documented limit)
HEADER_CHARS = 150  # Block Kit limits
FIELD_CHARS = 2000
ERROR_CHARS = 100

# Slack's incoming-webhook errors and what to do about them.
HINTS = {
    "no_service": "the webhook was removed or its Slack app uninstalled; create a new incoming "
    "webhook and update the URL",
    "no_service_id": "the webhook URL is incomplete; copy it again from Slack",
    "no_team": "the webhook's Slack workspace was not found; copy the URL again from Slack",
    "team_disabled": "the webhook's Slack workspace is disabled",
    "channel_not_found": "the webhook's channel was deleted; create a webhook for another channel",
    "channel_is_archived": "the webhook's channel is archived; unarchive it or create a webhook "
    "for another channel",
    "invalid_token": "the webhook's token is no longer valid; create a new incoming webhook",
    "action_prohibited": "a workspace admin has restricted posting to this channel",
    "posting_to_general_channel_denied": "only admins may post to this channel; use another",
    "user_not_found": "the webhook's user no longer exists; create a new incoming webhook",
    "invalid_payload": "Slack could not read the message; check text and blocks",
    "invalid_blocks": "Slack rejected the blocks; try them in Slack's Block Kit Builder",
    "invalid_blocks_format": "blocks must be a list of Block Kit block objects",
    "too_many_attachments": "a message may have at most 100 attachments",
    "missing_text_or_fallback_or_attachments": "give text or blocks",
}


class Pacer:
    """Spaces calls that share a key at least `interval` seconds apart, in this process.

    Each caller reserves the next free slot, then sleeps until it: no lock is held, so
    one slow HTTP call never holds up the next one, and other keys never wait.
    """

    def __init__(self, interval: float) -> None:
        self.interval = timedelta(seconds=interval)
        self._next: dict[str, datetime] = {}

    async def wait(self, key: str, max_wait: float | None = None) -> None:
        """Return when the caller may go; reserves its slot first, so callers keep order.

        A slot further away than `max_wait` is not taken: ActionRetry says when to come
        back, instead of an attempt spent asleep in the queue until its time limit.
        """
        now = clock.now()
        slot = max(now, self._next.get(key, now))
        delay = (slot - now).total_seconds()
        if max_wait is not None and delay > max_wait:
            raise ActionRetry(
                f"{delay:.0f}s of posts are queued for this Slack webhook (at most one a "
                "second); trying again then",
                retry_after=delay,
            )
        self._next[key] = slot + self.interval
        self._forget(now)
        if delay > 0:
            await asyncio.sleep(delay)

    def hold(self, key: str, seconds: float) -> None:
        """Give nobody a slot for `seconds` (the server said Retry-After)."""
        until = clock.now() + timedelta(seconds=seconds)
        if key not in self._next or until > self._next[key]:
            self._next[key] = until

    def _forget(self, now: datetime) -> None:
        if len(self._next) > 1000:  # keys whose slot has passed carry no state
            self._next = {key: at for key, at in self._next.items() if at > now}


PACER = Pacer(SLACK_INTERVAL)
POST_TIME = 5.0  # seconds an attempt keeps for the post after its slot in the queue


def webhook_label(url: str) -> str:
    """`hooks.slack.com/services/T01…/B02…/***`: enough to tell webhooks apart, no token."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError):
        return "the webhook URL (not a valid URL)"
    parts = [part for part in parsed.path.split("/") if part]
    if parts:
        parts[-1] = "***"
    keep = ("services", "triggers", "***")
    shown = [p if p in keep or len(p) <= 3 else p[:3] + "…" for p in parts]
    port = f":{parsed.port}" if parsed.port is not None else ""
    return "/".join([f"{parsed.host}{port}", *shown])


def _key(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()  # the pacer does not keep the secret


async def send_slack(action: SendSlack, run: Execution) -> Outcome:
    """Post text and blocks; without either, a summary of the firing (`default_blocks`);
    with blocks but no text, the one-line summary as the notification text."""
    url = run.render(action.webhook_url, "send-slack webhook_url").strip()
    await run.guard.check(url, "send-slack webhook_url")
    text = run.render(action.text, "send-slack text") if action.text is not None else None
    blocks = (
        run.render_value(action.blocks, "send-slack blocks") if action.blocks is not None else None
    )
    if text is None and blocks is None:
        text, blocks = fallback_text(run.request), default_blocks(run.request)
    elif text is None:
        text = fallback_text(run.request)  # what notifications and screen readers show
    payload: dict[str, Any] = {"text": text}
    if blocks is not None:
        payload["blocks"] = blocks

    where = f"Slack {webhook_label(url)}"
    key = _key(url)
    left = run.time_left()
    # Keep time for the post itself once the slot comes.
    await PACER.wait(key, None if left is None else max(left - POST_TIME, 0.0))
    try:
        # Redirects are not followed: the guard checked this URL only.
        response = await run.http.post(url, json=payload, follow_redirects=False)
    except httpx.TransportError as exc:
        error = transport_error(exc, where)
        raise ActionRetry(error.message.replace(url, "***")) from None
    _read_answer(response, where, key)
    return Outcome(
        summary=f"posted to {where} ({response.status_code} {_answer_text(response) or 'ok'})",
        status_code=response.status_code,
        details={"webhook": webhook_label(url)},
    )


def _answer_text(response: httpx.Response) -> str:
    text = " ".join(response.text.split())
    return text[:ERROR_CHARS] + "…" if len(text) > ERROR_CHARS else text


def _read_answer(response: httpx.Response, where: str, key: str) -> None:
    """Raise for anything but 2xx, with Slack's error and what to do about it."""
    if response.is_success:
        return
    status = response.status_code
    error = _answer_text(response) or response.reason_phrase
    if status == 429:
        after = retry_after(response)
        if after is not None:
            PACER.hold(key, after)
        wait = f"; Slack asks to wait {after:g} s" if after is not None else ""
        raise ActionRetry(
            f"{where} is rate limiting (429 {error}){wait}", status_code=429, retry_after=after
        )
    if status >= 500 or status in RETRYABLE_STATUS:
        raise ActionRetry(
            f"{where} answered {status} {error}; Slack may be having trouble, will retry",
            status_code=status,
            retry_after=retry_after(response),
        )
    if 300 <= status < 400:
        raise ActionFailed(
            f"{where} answered {status} (a redirect, not followed); give the incoming-webhook "
            "URL exactly as Slack shows it",
            status_code=status,
        )
    hint = HINTS.get(error, "see Slack's incoming-webhook errors")
    raise ActionFailed(f"{where} answered {status} {error}: {hint}", status_code=status)


def _escape(text: str) -> str:
    """Slack mrkdwn treats &, < and > as markup."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _when(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def resource_link(event: Event) -> str | None:
    """A link for the resource: a `*.url` label holding an http(s) URL, when there is one."""
    for name, value in event.resource.items():
        if name.endswith(".url") and value.startswith(("https://", "http://")):
            return value
    return None


def fallback_text(request: ActionRequest) -> str:
    """One line for notifications: `etl-watch triggered: prefect.flow-run.Failed on x`,
    or for a group of alerts `30 alerts firing: etl-watch`."""
    if request.notice is not None:
        return notice_headline(request.notice)
    head = f"{request.automation.name} {request.state.value}"
    event = request.triggering_event
    if event is None:
        return head
    return f"{head}: {event.event} on {event.resource.name or event.resource.id}"


def notice_headline(notice: AlertNotice) -> str:
    """`30 alerts firing: etl-watch` or `etl-watch resolved`."""
    names = list(dict.fromkeys(str(a["name"]) for a in notice.alerts))
    named = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    if notice.total == 1:
        return f"{named} {notice.status}"
    count = notice.firing if notice.status == "firing" else notice.total
    return f"{count} alerts {notice.status}: {named}"


def notice_blocks(notice: AlertNotice) -> list[dict[str, Any]]:
    """Block Kit for a group of alerts: a header with the count, one line per alert shown
    (state, name, summary, since), and how many more there are."""
    icon = {"firing": ":rotating_light:", "acknowledged": ":eyes:"}.get(
        notice.status, ":white_check_mark:"
    )
    header = _cut(f"{icon} {notice_headline(notice)}", HEADER_CHARS)
    lines = []
    for alert in notice.alerts:
        mark = {"firing": ":red_circle:", "acknowledged": ":large_yellow_circle:"}.get(
            str(alert["state"]), ":white_check_mark:"
        )
        key = ", ".join(f"{k}={v}" for k, v in sorted(alert["key"].items()))
        where = f" ({_escape(key)})" if key else ""
        since = _when(datetime.fromisoformat(alert["first_fired"]))
        count = f" ({alert['count']} firings)" if alert["count"] > 1 else ""
        lines.append(
            f"{mark} *{_escape(alert['name'])}*{where}{count}: {_escape(alert['summary'])} "
            f"· since {since}"
        )
    more = notice.total - len(notice.alerts)
    if more > 0:
        lines.append(f"… and {more} more")
    labels = " · ".join(f"`{_escape(k)}` = {_escape(v)}" for k, v in sorted(notice.labels.items()))
    context = f"tripwire alert group `{notice.group[:12]}`" + (f" · {labels}" if labels else "")
    return [
        {"type": "header", "text": {"type": "plain_text", "text": header, "emoji": True}},
        {"type": "section", "text": {"type": "mrkdwn", "text": _cut("\n".join(lines), 3000)}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": _cut(context, FIELD_CHARS)}]},
    ]


def default_blocks(request: ActionRequest) -> list[dict[str, Any]]:
    """Block Kit summary of a firing: header, then event, resource, flow, deployment, state
    message, time (UTC) and the for_each labels; for a group of alerts, `notice_blocks`."""
    if request.notice is not None:
        return notice_blocks(request.notice)
    icon = ":rotating_light:" if request.state == FiringState.triggered else ":white_check_mark:"
    header = _cut(f"{icon} {request.automation.name} {request.state.value}", HEADER_CHARS)
    fields: list[str] = []
    event = request.triggering_event
    if event is not None:
        fields.append(f"*Event*\n`{_escape(event.event)}`")
        link = resource_link(event)
        name = _escape(event.resource.name or event.resource.id)
        shown = f"<{_escape(link).replace('|', '%7C')}|{name}>" if link else name
        resource = f"*Resource*\n{shown}"
        if event.resource.name:
            resource += f"\n`{_escape(event.resource.id)}`"
        fields.append(resource)
        for role in ("flow", "deployment"):
            related = event.resources_in_role(role)
            if related:
                fields.append(f"*{role.title()}*\n{_escape(related[0].name or related[0].id)}")
        message = event.resource.get("prefect.state-message")
        if message:
            fields.append(f"*Message*\n{_escape(message)}")
        fields.append(f"*When*\n{_when(event.occurred)}")
    else:
        fields.append(f"*When*\n{_when(request.triggered)}")
    if request.triggering_labels:
        labels = "\n".join(
            f"`{_escape(k)}` = {_escape(v)}" for k, v in sorted(request.triggering_labels.items())
        )
        fields.append(f"*For each*\n{labels}")
    return [
        {"type": "header", "text": {"type": "plain_text", "text": header, "emoji": True}},
        {
            "type": "section",
            "fields": [{"type": "mrkdwn", "text": _cut(f, FIELD_CHARS)} for f in fields[:10]],
        },
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": f"tripwire automation `{_escape(request.automation.name)}` · "
                    f"firing `{request.firing_id}`",
                }
            ],
        },
    ]


SLACK_EXECUTORS: dict[str, Executor] = {"send-slack": send_slack}
