"""The client side of a Prefect server's event stream, as Prefect's own subscriber speaks it.

`WS {api}/events/out` with the `prefect` subprotocol: send `{"type": "auth", "token": ...}`
(the API key, or the auth string on a self-hosted server, or null), expect
`{"type": "auth_success"}`, send `{"type": "filter", "filter": {...}, "backfill": true}`,
then read `{"type": "event", "event": {...}}` messages. The server fills `occurred.until`
with "now" when it is left out, which would filter out every live event, so it is set far
ahead. The server backfills at most 15 minutes (PREFECT_SERVER_EVENTS_MAXIMUM_WEBSOCKET_BACKFILL)
and only what its event persister has written; `read_stored` pages `POST {api}/events/filter`
for the rest.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import httpx
import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from events.errors import EventsError

FAR_AHEAD = timedelta(days=365)
MAX_MESSAGE_BYTES = 4 * 1024 * 1024  # an event is at most 1.5 MB; leave room for the envelope
PAGE_SIZE = 50  # Prefect's largest page for /events/filter


class StreamRefused(EventsError):
    """The Prefect server refused the subscription (auth or filter); says why."""


def socket_url(api_url: str) -> str:
    """`http(s)://host/api` → `ws(s)://host/api/events/out`."""
    return api_url.replace("https://", "wss://", 1).replace("http://", "ws://", 1) + "/events/out"


def auth_headers(api_key: str | None, auth_string: str | None) -> dict[str, str]:
    """REST auth as Prefect's client sends it: the auth string (Basic) wins over a key."""
    if auth_string:
        return {"Authorization": "Basic " + base64.b64encode(auth_string.encode()).decode()}
    if api_key:
        return {"Authorization": f"Bearer {api_key}"}
    return {}


def event_filter(
    since: datetime, until: datetime | None, prefixes: list[str], *, ascending: bool = True
) -> dict[str, Any]:
    """A filter in Prefect's shape; `until` None = far ahead (a live subscription)."""
    flt: dict[str, Any] = {
        "occurred": {
            "since": since.isoformat(),
            "until": (until or since + FAR_AHEAD).isoformat(),
        },
        "order": "ASC" if ascending else "DESC",
    }
    if prefixes:
        flt["event"] = {"prefix": prefixes}
    return flt


async def subscribe(
    api_url: str,
    token: str | None,
    since: datetime,
    prefixes: list[str],
    *,
    open_timeout: float = 10.0,
) -> ClientConnection:
    """Connect, authenticate and send the filter with backfill; the caller reads events."""
    socket = await connect(
        socket_url(api_url),
        subprotocols=[Subprotocol("prefect")],
        open_timeout=open_timeout,
        max_size=MAX_MESSAGE_BYTES,
        max_queue=1024,  # read ahead: a slow reader makes the server drop events (256 queued)
        ping_interval=20,
        ping_timeout=20,
    )
    try:
        await socket.send(orjson.dumps({"type": "auth", "token": token}).decode())
        try:
            answer = orjson.loads(await socket.recv())
        except ConnectionClosed as exc:  # how a Prefect server says no
            answer = exc.rcvd.reason if exc.rcvd and exc.rcvd.reason else str(exc)
        if not isinstance(answer, dict) or answer.get("type") != "auth_success":
            raise StreamRefused(
                f"authentication failed ({answer!r:.200}); check TRIPWIRE_PREFECT_API_KEY "
                "or TRIPWIRE_PREFECT_API_AUTH_STRING"
            )
        message = {
            "type": "filter",
            "filter": event_filter(since, None, prefixes),
            "backfill": True,
        }
        await socket.send(orjson.dumps(message).decode())
    except BaseException:
        await socket.close()
        raise
    return socket


def event_of(message: str | bytes) -> dict[str, Any] | None:
    """The event in a stream message; None for other message types."""
    data = orjson.loads(message)
    if isinstance(data, dict) and data.get("type") == "event":
        event = data.get("event")
        return event if isinstance(event, dict) else None
    return None


async def read_stored(
    http: httpx.AsyncClient, api_url: str, since: datetime, until: datetime, prefixes: list[str]
) -> AsyncIterator[dict[str, Any]]:
    """Every event the server has stored in [since, until], oldest first, page by page."""
    body = {"filter": event_filter(since, until, prefixes), "limit": PAGE_SIZE}
    response = await http.post(f"{api_url}/events/filter", json=body)
    while True:
        response.raise_for_status()
        page = response.json()
        for event in page.get("events") or []:
            yield event
        next_page = page.get("next_page")
        if not next_page:
            return
        response = await http.get(next_page)
