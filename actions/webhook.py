"""call-webhook: one HTTP request to any endpoint; any answer but 2xx is a failure.

Headers sent besides the action's own:
- `Idempotency-Key: <action request id>`, always (unless the action sets it): the id is the
  same on every retry of the request, so a receiver can drop repeats.
- With `signing_secret`, the Standard Webhooks headers `webhook-id` (the same request id),
  `webhook-timestamp` and `webhook-signature` (`v1,<base64 HMAC-SHA256>` of
  `id.timestamp.body`); receivers verify with any Standard Webhooks library.

`json` is rendered keeping JSON types and sent as application/json; `body` (Prefect's
`payload`) is rendered as text and sent as is, with whatever Content-Type the headers give.
Redirects are not followed (the SSRF guard checked the first URL only).

With `block_document_id`, Prefect's Webhook block gives the method, URL and headers (the
action's own headers go on top); its URL is a secret, so only its origin is shown.
"""

from __future__ import annotations

import base64
import binascii
import json
from functools import lru_cache
from typing import Any

import httpx
from standardwebhooks.webhooks import Webhook

from actions.blocks import resolve
from actions.errors import ActionFailed, ActionRetry
from actions.execution import Execution, Executor, Outcome
from actions.guard import origin, parse_url
from actions.http import check, transport_error
from actions.model import CallWebhook
from actions.prefect_blocks import block_details, block_guard, webhook_target
from events import clock

MIN_KEY_BYTES = 24  # the Standard Webhooks spec: 24 to 64 bytes
MAX_KEY_BYTES = 64


@lru_cache(maxsize=1024)
def shown_url(url: httpx.URL) -> str:
    """The URL as outcomes and errors show it: no user info, no query string."""
    return str(url.copy_with(query=None, fragment=None, userinfo=b""))


def signing_key(secret: str) -> bytes:
    """The key of a `whsec_<base64>` secret; anything else is refused, not used as is."""
    raw = secret.strip().removeprefix("whsec_")
    try:
        key = base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
    except binascii.Error:
        key = b""
    # A password-like secret would sign with bytes no receiver derives from it.
    if not MIN_KEY_BYTES <= len(key) <= MAX_KEY_BYTES:
        raise ActionFailed(
            "call-webhook signing_secret: not a Standard Webhooks secret; expected whsec_ "
            f"then base64 of {MIN_KEY_BYTES} to {MAX_KEY_BYTES} random bytes "
            "(e.g. whsec_ + the output of `openssl rand -base64 32`)"
        )
    return key


def _sign(secret: str, msg_id: str, body: str) -> dict[str, str]:
    """The three Standard Webhooks headers for `body`."""
    signer = Webhook(signing_key(secret))
    at = clock.now()
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signer.sign(msg_id, at, body),
    }


def _body(action: CallWebhook, run: Execution) -> tuple[str | None, str | None]:
    """The rendered body and the Content-Type it implies; without one, a notification about
    alerts sends its notice (status, group, counts and the alerts) as JSON."""
    if action.json_body is not None:
        value = run.render_value(action.json_body, "call-webhook json")
        try:
            return json.dumps(value, separators=(",", ":"), default=str), "application/json"
        except ValueError as exc:  # e.g. a circular value
            raise ActionFailed(f"call-webhook json: cannot be sent as JSON ({exc})") from None
    source = action.body if action.body is not None else action.payload
    if source is None and run.request.notice is not None:  # a group of alerts, as JSON
        return run.request.notice.model_dump_json(), "application/json"
    if source is None:
        return None, None
    return run.render(source, "call-webhook body"), None


async def call_webhook(action: CallWebhook, run: Execution) -> Outcome:
    """Send the request; 2xx is success, 408/425/429/5xx and transport errors are retried."""
    method: str = action.method
    headers: dict[str, str] = {}
    details: dict[str, Any] = {}
    if action.block_document_id is not None:
        block = await resolve(run, action.block_document_id, action.connection)
        target = webhook_target(block)
        method, url, headers = target.method, target.url, dict(target.headers)
        await block_guard(block, run).check(url, f"call-webhook ({block}) url")
        parsed = parse_url(url)
        shown = f"{origin(parsed)}/… ({block})"
        details = block_details(block)
    else:
        assert action.url is not None  # the model requires url or block_document_id
        url = run.render(action.url, "call-webhook url").strip()
        await run.guard.check(url, "call-webhook url")
        parsed = parse_url(url)  # the guard accepted it, so it parses
        shown = shown_url(parsed)
    for name, value in action.headers.items():
        rendered = run.render(value, f"call-webhook headers.{name}")
        if "\r" in rendered or "\n" in rendered:  # else the client refuses it, as a transport error
            raise ActionFailed(f"call-webhook headers.{name}: the rendered value has a line break")
        headers[name] = rendered
    given = {name.lower() for name in headers}
    body, content_type = _body(action, run)
    if content_type and "content-type" not in given:
        headers["Content-Type"] = content_type
    request_id = str(run.request.id)
    if "idempotency-key" not in given:
        headers["Idempotency-Key"] = request_id
    if action.signing_secret is not None:
        secret = run.render(action.signing_secret, "call-webhook signing_secret")
        signed = _sign(secret, request_id, body or "")
        headers = {k: v for k, v in headers.items() if k.lower() not in signed} | signed

    what = f"{method} {shown}"
    try:
        response = await run.http.request(
            method,
            parsed,
            headers=headers,
            content=body.encode() if body is not None else None,
            timeout=action.timeout.total_seconds(),
            follow_redirects=False,
        )
    except httpx.TransportError as exc:
        error = transport_error(exc, what)
        raise ActionRetry(error.message.replace(url, shown)) from None
    check(response, what)
    details |= {"method": method, "url": shown}
    return Outcome(
        summary=f"{what} → {response.status_code} {response.reason_phrase}".rstrip(),
        status_code=response.status_code,
        details=details,
    )


WEBHOOK_EXECUTORS: dict[str, Executor] = {"call-webhook": call_webhook}
