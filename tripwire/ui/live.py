"""The events page's live feed: Server-Sent Events, each a table row rendered (and
escaped) by the same template as the page's own rows, for events that match the page's
filters. The page's script puts each row on top; without JavaScript the page still
works, it just does not update."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from jinja2 import Template

from events.filters import EventFilter, EventOccurredFilter
from events.live import OVERFLOW, live_events
from events.model import ReceivedEvent
from tripwire.ui.context import Dashboard
from tripwire.ui.event_query import EventQuery, QueryError

log = logging.getLogger("tripwire.ui")

HEARTBEAT = 15.0  # seconds between comments that keep proxies from closing a quiet feed


def build_live(board: Dashboard) -> APIRouter:
    router = APIRouter(prefix="/ui", include_in_schema=False)

    @router.get("/events/live")
    async def live_feed(request: Request) -> Response:
        visitor = board.visitor(request)
        if visitor is None:
            return Response("sign in first: /ui/login", 401, media_type="text/plain")
        asked = EventQuery.from_params(request.query_params)
        try:
            flt = asked.to_filter()
        except QueryError as exc:
            return Response(str(exc), 400, media_type="text/plain")
        # Live events are newer than any range the page shows: the other filters apply.
        flt = flt.model_copy(update={"occurred": EventOccurredFilter()})
        after = request.query_params.get("stored", "")
        position = int(after) if after.isdigit() else None
        row = board.pages.env.get_template("_event_row.html")
        return StreamingResponse(
            _feed(request, board, flt, row, position),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    return router


async def _feed(
    request: Request, board: Dashboard, flt: EventFilter, row: Template, after: int | None
) -> AsyncIterator[bytes]:
    """From just past `after` (the store's position when the page read its events), so
    events stored while the page loaded come too; the page skips any it already shows."""
    yield b": connected\n\n"
    async with live_events(board.engine.bus, after) as live:
        while not await request.is_disconnected():
            try:
                data = await asyncio.wait_for(live.next(), HEARTBEAT)
            except TimeoutError:
                yield b": still here\n\n"
                continue
            if data is None:
                return
            if data == OVERFLOW:
                log.warning("a dashboard live feed fell behind; it ends and the page reconnects")
                return
            event = ReceivedEvent.model_validate_json(data)
            if not flt.includes(event):
                continue
            html = row.render(event=event)
            message = orjson.dumps({"id": str(event.id), "html": html})
            yield b"event: event\ndata: " + message + b"\n\n"
