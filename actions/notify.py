"""send-notification: a notification through any Apprise URL (Teams, Discord, email, ntfy,
a JSON endpoint ...).

Apprise URLs carry their credentials, so errors show only the scheme and, for self-hosted
services, the host that the SSRF guard checked. Apprise reports a failed delivery but not
whether trying again could help, so a failed delivery is retried.

With `block_document_id`, the Prefect notification block is read from the Prefect server
(`actions.blocks`) and sent as Prefect sends it (`actions.prefect_blocks`).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import apprise

from actions.blocks import Block, resolve
from actions.errors import ActionFailed, ActionRetry
from actions.execution import Execution, Executor, Outcome, UrlGuard
from actions.guard import apprise_target
from actions.model import SendNotification
from actions.prefect_blocks import (
    APPRISE_URLS,
    CUSTOM_WEBHOOK,
    apprise_message,
    block_details,
    block_guard,
    prefect_asset,
    send_custom_webhook,
    unsupported,
)

NOTIFY_TIMEOUT = 60.0  # seconds Apprise may spend on one notification, retries included
REASON_CHARS = 500


def _scheme(url: str) -> str:
    """`json://`, or "" when the URL does not start with a plausible scheme."""
    scheme, sep, _ = url.partition("://")
    plausible = sep and scheme.isascii() and scheme.isalnum() and len(scheme) <= 20
    return f"{scheme.lower()}://" if plausible else ""


def _reasons(result: apprise.AppriseResult, url: str, run: Execution) -> str:
    """Apprise's warnings and errors for this one call, without secrets."""
    seen: dict[str, None] = {}
    for entry in result.logs():
        if logging.getLevelName(entry.level) >= logging.WARNING:
            seen[entry.message] = None
    text = run.templates.secrets.redact("; ".join(seen).replace(url, "***"))
    return text[:REASON_CHARS] + "…" if len(text) > REASON_CHARS else text


async def send_notification(action: SendNotification, run: Execution) -> Outcome:
    """Render the URL, subject and body, and notify; or send through the Prefect block the
    action names."""
    if action.block_document_id is not None:
        block = await resolve(run, action.block_document_id, action.connection)
        return await _send_block(block, action, run)
    assert action.url is not None  # the model requires url or block_document_id
    url = run.render(action.url, "send-notification url").strip()
    title = run.render(action.subject, "send-notification subject")
    body = run.render(action.body, "send-notification body")
    return await deliver(url, title, body, run, "send-notification url")


async def _send_block(block: Block, action: SendNotification, run: Execution) -> Outcome:
    if block.slug != CUSTOM_WEBHOOK and block.slug not in APPRISE_URLS:
        raise unsupported(block, "send-notification")
    title = run.render(action.subject, "send-notification subject")
    body = run.render(action.body, "send-notification body")
    if block.slug == CUSTOM_WEBHOOK:
        return await send_custom_webhook(block, title, body, run)
    message = apprise_message(block, title, body)
    outcome = await deliver(
        message.url,
        message.title,
        message.body,
        run,
        f"send-notification ({block})",
        notify_type=message.notify_type,
        guard=block_guard(block, run),
        asset=prefect_asset(),
        shown="its URL",
    )
    return Outcome(
        summary=f"notified via {outcome.details['service']} ({block})",
        details={**outcome.details, **block_details(block)},
    )


async def deliver(
    url: str,
    title: str,
    body: str,
    run: Execution,
    field: str,
    *,
    notify_type: str = "info",
    guard: UrlGuard | None = None,
    asset: apprise.AppriseAsset | None = None,
    shown: str | None = None,
) -> Outcome:
    """Send one message through the Apprise URL `url`, guarding a self-hosted host; `field`
    ("send-notification url") names where the URL came from in errors. `guard` replaces
    the run's, `asset` Apprise's app name and images, `shown` the words for the URL."""
    what = field.partition(" ")[0]
    scheme = _scheme(url)
    # The first parse loads Apprise's plugins (a fraction of a second): off the loop.
    plugin: Any = await asyncio.to_thread(apprise.Apprise.instantiate, url, asset)
    if plugin is None:
        which = f"this {scheme} URL" if scheme else "this URL (it does not start with scheme://)"
        raise ActionFailed(
            f"{field}: Apprise did not recognise {shown or which}; check the scheme and "
            "the parts its service needs in Apprise's documentation (a few services also "
            "need an extra Python package)"
        )
    target = apprise_target(plugin)
    if target is not None:
        await (guard or run.guard).check(target, f"{field} ({scheme} host)")
    if not body.strip() and not title.strip():
        raise ActionFailed(f"{what}: subject and body rendered empty; nothing to send")

    notifier = apprise.Apprise(asset=asset)
    notifier.add(plugin)
    result = await notifier.async_notify(
        body=body, title=title, notify_type=notify_type, timeout=NOTIFY_TIMEOUT
    )
    service = str(getattr(plugin, "service_name", scheme))
    via = f"{service} ({target or scheme or 'apprise'})"
    if not result:
        if result.status == apprise.AppriseResultStatus.TIMEOUT:
            reason = f"no answer within {NOTIFY_TIMEOUT:g} s"
        else:
            reason = _reasons(result, url, run) or "Apprise gave no reason"
        raise ActionRetry(f"{what} via {via} failed: {reason}")
    return Outcome(summary=f"notified via {via}", details={"service": service, "scheme": scheme})


NOTIFY_EXECUTORS: dict[str, Executor] = {"send-notification": send_notification}
