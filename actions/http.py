"""One reading of HTTP answers for every action that calls out: what is permanent, what
is worth retrying, and a short summary of the answer for the ledger."""

from __future__ import annotations

import email.utils
from datetime import UTC

import httpx

from actions.errors import ActionFailed, ActionRetry
from events import clock

RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
SUMMARY_CHARS = 300


def summary(response: httpx.Response) -> str:
    """`404 Not Found: no_service`, cut to a few hundred characters."""
    text = response.text.strip().replace("\n", " ")
    if len(text) > SUMMARY_CHARS:
        text = text[:SUMMARY_CHARS] + "…"
    head = f"{response.status_code} {response.reason_phrase}".strip()
    return f"{head}: {text}" if text else head


def retry_after(response: httpx.Response) -> float | None:
    """Seconds from a `Retry-After` header (seconds or an HTTP date), when there is one."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - clock.now()).total_seconds())


def check(response: httpx.Response, what: str, detail: str | None = None) -> None:
    """Raise for anything but 2xx: ActionRetry when it may pass, ActionFailed when not.
    `detail` replaces the body in the message (a reason the caller read from it)."""
    if response.is_success:
        return
    if detail is None:
        message = f"{what} answered {summary(response)}"
    else:
        message = f"{what} answered {response.status_code} {response.reason_phrase}: {detail}"
    if response.status_code in RETRYABLE_STATUS:
        raise ActionRetry(
            message, status_code=response.status_code, retry_after=retry_after(response)
        )
    raise ActionFailed(message, status_code=response.status_code)


def transport_error(exc: httpx.TransportError, what: str) -> ActionRetry:
    """A connection that failed or timed out: worth another try."""
    # aiohttp's connection errors reach httpx as ConnectTimeout: only a read or write
    # that ran out of time is called a timeout.
    slow = isinstance(exc, httpx.ReadTimeout | httpx.WriteTimeout)
    kind = "timed out" if slow else "was unreachable"
    return ActionRetry(f"{what} {kind} ({type(exc).__name__}: {exc or 'no detail'})")
