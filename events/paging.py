"""Paging through stored events: the order pages follow (occurred, then id), the
condition that continues after a page's last event, and the next-page token that carries
the filter, the page size and that position in URL-safe base64."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Select, and_, or_

from events.errors import InvalidEvent
from events.filters import EventFilter, EventOrder
from events.tables import events

Position = tuple[str, str]  # a page's last event: its time (ISO 8601) and its id


def ordered(query: Select[Any], order: EventOrder) -> Select[Any]:
    """`query` in page order: by time, then id (ids break ties between equal times)."""
    if order is EventOrder.ASC:
        return query.order_by(events.c.occurred.asc(), events.c.id.asc())
    return query.order_by(events.c.occurred.desc(), events.c.id.desc())


def after(
    position: Position,
    order: EventOrder,
    occurred: Any = events.c.occurred,
    event_id: Any = events.c.id,
) -> ColumnElement[bool]:
    """The events that come after `position` in page order (of the columns given, by
    default `events`' own)."""
    at, last_id = datetime.fromisoformat(position[0]), position[1]
    if order is EventOrder.ASC:
        return or_(occurred > at, and_(occurred == at, event_id > last_id))
    return or_(occurred < at, and_(occurred == at, event_id < last_id))


def encode_token(flt: EventFilter, limit: int, position: Position) -> str:
    """The token for the page after `position`."""
    raw = orjson.dumps(
        {
            "filter": flt.model_dump(mode="json", exclude_none=True),
            "limit": limit,
            "after": position,
        }
    )
    return base64.urlsafe_b64encode(raw).decode()


def decode_token(token: str) -> tuple[EventFilter, int, Position]:
    """The filter, limit and position a next-page token stands for."""
    try:
        data = orjson.loads(base64.urlsafe_b64decode(token.encode()))
        position = data["after"]
        return (
            EventFilter.model_validate(data["filter"]),
            int(data["limit"]),
            (position[0], position[1]),
        )
    except Exception as exc:
        raise InvalidEvent(
            "the page token is not valid; start again from the first page", field="page-token"
        ) from exc
