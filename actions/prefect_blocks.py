"""Running Prefect's notification and webhook blocks as Prefect runs them.

Prefect sends most notification blocks through Apprise; here each block's fields become
the Apprise URL of the same service, in Apprise's documented URL syntax, so the message
is the one Prefect would send. The Custom Webhook block is one HTTP request with
`{{subject}}`, `{{body}}`, `{{name}}` and the block's secrets put into its fields; the
Webhook block is the target of call-webhook. Both go through the actions' HTTP client and
the SSRF guard.

Block type slugs and fields follow Prefect 3.8 (`prefect/blocks/notifications.py`,
`prefect/blocks/webhook.py`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import apprise
import httpx

from actions.blocks import Block
from actions.errors import ActionFailed, ActionRetry
from actions.execution import Execution, Outcome, UrlGuard
from actions.guard import AddressGuard, origin, parse_url
from actions.http import check, transport_error


def prefect_asset() -> apprise.AppriseAsset:
    """What Prefect's Apprise-based blocks send as: Slack and Teams show it as the sender."""
    return apprise.AppriseAsset(
        app_id="Prefect Notifications",
        app_desc="Prefect Notifications",
        app_url="https://prefect.io",
    )


NOTIFY_TYPES = frozenset({"info", "success", "warning", "failure"})
CUSTOM_WEBHOOK = "custom-webhook"
WEBHOOK = "webhook"
# Opsgenie's marks for the kinds of recipient.
OPSGENIE_TARGETS = (
    ("@", "target_user"),
    ("#", "target_team"),
    ("*", "target_schedule"),
    ("^", "target_escalation"),
)
# Prefect's placeholders: {{ name }}, no filters or expressions.
PLACEHOLDER = re.compile(r"\{\{\s*([\w.\-\[\]$]+)\s*\}\}")
DEFAULT_TIMEOUT = 10.0  # seconds: the Custom Webhook block's default


def unsupported(block: Block, action: str) -> ActionFailed:
    """The error for a block type the action cannot run, saying what to use instead."""
    if action == "call-webhook":
        instead = (
            "call-webhook takes Prefect's Webhook block; use send-notification for "
            "notification blocks, or url:"
        )
    elif block.slug == WEBHOOK:
        instead = "a Webhook block is called by call-webhook, not send-notification"
    else:
        instead = "use url: with an Apprise URL"
    return ActionFailed(
        f"block type {block.slug!r} (block {block.name!r}) is not supported by tripwire's "
        f"{action}; {instead}"
    )


def _field(block: Block, name: str) -> Any:
    if block.data.get(name) is None:
        raise ActionFailed(f"{block}: field {name} is not set; set it on the block in Prefect")
    return block.data[name]


def _q(value: Any) -> str:
    return quote(str(value), safe="")


def _yes(value: Any) -> str:
    return "yes" if value else "no"


def _query(params: Mapping[str, Any], details: Mapping[str, Any] | None = None) -> str:
    pairs = [(k, str(v)) for k, v in params.items() if v is not None]
    # Apprise reads `+name=value` arguments as custom details.
    pairs += [(f"+{k}", str(v)) for k, v in (details or {}).items()]
    return urlencode(pairs, quote_via=quote)


def _with_params(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True)) | params
    return urlunsplit(parts._replace(query=urlencode(query, quote_via=quote)))


def _native(block: Block) -> str:
    """The block's own webhook URL: Apprise recognises Slack's and Teams' as they are."""
    return str(_field(block, "url"))


def _teams(block: Block) -> str:
    plugin: Any = apprise.Apprise.instantiate(_native(block))
    if plugin is None or "workflow" not in plugin.secure_protocol:
        raise ActionFailed(
            f"{block}: url is not a Microsoft Teams workflow URL Apprise recognises; copy it "
            "again from the workflow's 'When a Teams webhook request is received' trigger"
        )
    url = str(plugin.url(privacy=False))
    return _with_params(
        url, image=_yes(block.data.get("include_image", True)), wrap=_yes(block.data.get("wrap"))
    )


def _discord(block: Block) -> str:
    data = block.data
    bot = f"{_q(data['botname'])}@" if data.get("botname") else ""
    params = {
        "tts": _yes(data.get("tts")),
        "image": _yes(data.get("include_image")),
        "avatar": _yes(data.get("avatar")),
        "avatar_url": data.get("avatar_url"),
    }
    webhook = f"{_q(_field(block, 'webhook_id'))}/{_q(_field(block, 'webhook_token'))}"
    return f"discord://{bot}{webhook}/?{_query(params)}"


def _pagerduty(block: Block, body: str | None = None) -> str:
    data = block.data
    details = dict(data.get("custom_details") or {})
    if body is not None:
        # As Prefect does: the subject is the alert's summary, the body a custom detail.
        details["Prefect Notification Body"] = body
    keys = f"{_q(_field(block, 'integration_key'))}@{_q(_field(block, 'api_key'))}"
    path = "/".join(_q(p) for p in (data.get("source"), data.get("component")) if p)
    params = {
        "group": data.get("group"),
        "class": data.get("class_id"),
        "click": data.get("clickable_url"),
        "region": data.get("region_name") or "us",
        "image": _yes(data.get("include_image", True)),
    }
    return f"pagerduty://{keys}/{path}?{_query(params, details)}"


def _twilio(block: Block) -> str:
    auth = f"{_q(_field(block, 'account_sid'))}:{_q(_field(block, 'auth_token'))}"
    to = "/".join(_q(n) for n in _field(block, "to_phone_numbers"))
    return f"twilio://{auth}@{_q(_field(block, 'from_phone_number'))}/{to}"


def _opsgenie(block: Block) -> str:
    data = block.data
    targets = [
        f"{mark}{name}" for mark, field in OPSGENIE_TARGETS for name in data.get(field) or []
    ]
    params = {
        "region": data.get("region_name") or "us",
        "priority": data.get("priority"),
        "batch": _yes(data.get("batch")),
        "tags": ",".join(data["tags"]) if data.get("tags") else None,
        "alias": data.get("alias"),
        "entity": data.get("entity"),
        "action": "new",
    }
    path = "/".join(_q(t) for t in targets)
    return f"opsgenie://{_q(_field(block, 'apikey'))}/{path}?{_query(params, data.get('details'))}"


def _mattermost(block: Block) -> str:
    data = block.data
    scheme = "mmosts" if data.get("secure") else "mmost"
    bot = f"{_q(data['botname'])}@" if data.get("botname") else ""
    host = str(_field(block, "hostname"))
    port = data.get("port") or 8065
    path = "".join(f"{_q(p)}/" for p in str(data.get("path") or "").split("/") if p)
    params = {
        "image": _yes(data.get("include_image")),
        "to": ",".join(data["channels"]) if data.get("channels") else None,
    }
    return f"{scheme}://{bot}{host}:{port}/{path}{_q(_field(block, 'token'))}/?{_query(params)}"


def _sendgrid(block: Block) -> str:
    # The sender is written as is: Apprise reads its '@' as the one in user:pass@host.
    sender = str(_field(block, "sender_email"))
    to = "/".join(_q(e) for e in _field(block, "to_emails"))
    return f"sendgrid://{_q(_field(block, 'api_key'))}:{sender}/{to}"


APPRISE_URLS: dict[str, Callable[[Block], str]] = {
    "slack-webhook": _native,
    "ms-teams-webhook": _teams,
    "discord-webhook": _discord,
    "pager-duty-webhook": _pagerduty,
    "twilio-sms": _twilio,
    "opsgenie-webhook": _opsgenie,
    "mattermost-webhook": _mattermost,
    "sendgrid-email": _sendgrid,
}
SUPPORTED = frozenset({*APPRISE_URLS, CUSTOM_WEBHOOK})


@dataclass(frozen=True)
class AppriseMessage:
    """What a block sends through Apprise: the URL (secret), title, body and notify type."""

    url: str
    title: str
    body: str
    notify_type: str


def apprise_message(block: Block, title: str, body: str) -> AppriseMessage:
    """The Apprise URL and message of an Apprise-based block, as Prefect's block builds it."""
    url = APPRISE_URLS[block.slug](block)
    notify_type = str(block.data.get("notify_type") or "info")
    if notify_type not in NOTIFY_TYPES:
        raise ActionFailed(
            f"{block}: notify_type {notify_type!r} is not one of {', '.join(sorted(NOTIFY_TYPES))}"
        )
    if block.slug == "pager-duty-webhook" and title:
        url, body = _pagerduty(block, body), " "
    return AppriseMessage(url=url, title=title, body=body, notify_type=notify_type)


def block_guard(block: Block, run: Execution) -> UrlGuard:
    """The SSRF guard for a block's URL: the worker's, or one that refuses private
    addresses when the block says allow_private_urls: false (as Prefect honours it)."""
    if block.data.get("allow_private_urls") is False:
        return AddressGuard(allow_private=False)
    return run.guard


# Custom Webhook


def _fill(value: Any, values: Mapping[str, Any], where: str, block: Block) -> Any:
    """Prefect's `{{name}}` substitution: a string that is one placeholder becomes the value
    itself, placeholders inside text become its text; dicts and lists are filled inside."""
    if isinstance(value, str):
        found = list(PLACEHOLDER.finditer(value))
        for match in found:
            if match[1] not in values:
                raise ActionFailed(
                    f"{block}: {where} uses {{{{{match[1]}}}}}, which is not subject, body, "
                    "name or one of the block's secrets; add it to the block's secrets"
                )
        if len(found) == 1 and found[0][0] == value:
            return values[found[0][1]]
        return PLACEHOLDER.sub(lambda m: str(values[m[1]]), value)
    if isinstance(value, Mapping):
        return {k: _fill(v, values, f"{where}.{k}", block) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, values, f"{where}[{i}]", block) for i, v in enumerate(value)]
    return value


def _string_map(value: Any, where: str, block: Block, header: bool = False) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ActionFailed(f"{block}: {where} must be an object of names to values")
    for name, item in value.items():
        text = str(item)
        if header and ("\r" in text or "\n" in text):
            raise ActionFailed(f"{block}: {where}.{name} has a line break once filled in")
    return {str(k): str(v) for k, v in value.items()}


async def send_custom_webhook(block: Block, title: str, body: str, run: Execution) -> Outcome:
    """The Custom Webhook block's request: its fields filled in, sent once; any answer but
    2xx fails (5xx, 408 and 429 are retried)."""
    data = block.data
    if data.get("form_data") is not None and data.get("json_data") is not None:
        raise ActionFailed(f"{block}: set form_data or json_data on the block, not both")
    secrets = data.get("secrets") or {}
    values = {**secrets, "subject": title, "body": body, "name": data.get("name")}
    url = _fill(_field(block, "url"), values, "url", block)
    if not isinstance(url, str):
        raise ActionFailed(f"{block}: url is not text once filled in")
    await block_guard(block, run).check(url, f"send-notification ({block}) url")
    parsed = parse_url(url)
    filled = _fill(data.get("headers"), values, "headers", block)
    headers = _string_map(filled, "headers", block, header=True)
    filled = _fill(data.get("cookies"), values, "cookies", block)
    cookies = _string_map(filled, "cookies", block, header=True)
    if cookies:  # one header: a client's cookie jar would keep them for other calls
        headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
    params = _string_map(_fill(data.get("params"), values, "params", block), "params", block)
    content: dict[str, Any] = {}
    if data.get("json_data") is not None:
        content["json"] = _fill(data["json_data"], values, "json_data", block)
    elif isinstance(data.get("form_data"), str):
        content["content"] = str(_fill(data["form_data"], values, "form_data", block)).encode()
    elif data.get("form_data") is not None:
        form = _fill(data["form_data"], values, "form_data", block)
        content["data"] = _string_map(form, "form_data", block)

    method = str(data.get("method") or "POST")
    shown = f"{origin(parsed)}/…"
    what = f"{method} {shown} ({block})"
    try:
        response = await run.http.request(
            method,
            parsed,
            params=params or None,
            headers=headers,
            timeout=float(data.get("timeout") or DEFAULT_TIMEOUT),
            follow_redirects=False,
            **content,
        )
    except httpx.TransportError as exc:
        error = transport_error(exc, what)
        raise ActionRetry(error.message.replace(url, shown)) from None
    check(response, what)
    return Outcome(
        summary=f"{what} → {response.status_code} {response.reason_phrase}".rstrip(),
        status_code=response.status_code,
        details=block_details(block) | {"method": method, "url": shown},
    )


def block_details(block: Block) -> dict[str, Any]:
    """What an outcome says about the block: never its data."""
    return {"block": block.name, "block_type": block.slug, "block_document_id": str(block.id)}


# Webhook (call-webhook)


@dataclass(frozen=True)
class WebhookTarget:
    """Where a Webhook block sends: its method, URL (secret) and headers (secret)."""

    method: str
    url: str
    headers: dict[str, str]


def webhook_target(block: Block) -> WebhookTarget:
    """The Webhook block's method, URL and headers."""
    if block.slug != WEBHOOK:
        raise unsupported(block, "call-webhook")
    url = str(_field(block, "url"))
    if block.data.get("verify") is False and url.lower().startswith("https:"):
        raise ActionFailed(
            f"{block}: verify is off, and tripwire always checks certificates; turn verify "
            "on (give the server a certificate its clients trust) or call it with url:"
        )
    headers = _string_map(block.data.get("headers"), "headers", block, header=True)
    return WebhookTarget(str(block.data.get("method") or "POST"), url, headers)
