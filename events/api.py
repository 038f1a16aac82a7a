"""HTTP routes for events: ingest, query, count."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Body, HTTPException, Query, Request, Response
from pydantic import BaseModel, BeforeValidator, Field

from events.bus import Bus
from events.errors import BusUnavailable, EventTooLarge, InvalidEvent
from events.filters import EventFilter
from events.metrics import EVENTS_ACCEPTED, EVENTS_REJECTED
from events.paging import decode_token
from events.parsing import encode, parse_body
from events.store import MAX_PAGE, Countable, EventStore

MAX_REQUEST_BYTES = 64 * 1024 * 1024


def _no_filter_is_all(value: Any) -> Any:
    # Prefect's client sends {"filter": null} for "everything".
    return EventFilter() if value is None else value


class FilterRequest(BaseModel):
    """Body of POST /api/events/filter."""

    filter: Annotated[EventFilter, BeforeValidator(_no_filter_is_all)] = Field(
        default_factory=EventFilter
    )
    limit: int = Field(default=50, ge=1, le=MAX_PAGE, description="Events per page.")


class CountByRequest(BaseModel):
    """Body of POST /api/events/count-by/{countable}."""

    filter: Annotated[EventFilter, BeforeValidator(_no_filter_is_all)] = Field(
        default_factory=EventFilter
    )


def problem(status: int, detail: str, field: str | None = None, **headers: str) -> Response:
    """An error response naming the field at fault."""
    body: dict[str, Any] = {"detail": detail}
    if field:
        body["field"] = field
    return Response(
        orjson.dumps(body), status, headers=headers or None, media_type="application/json"
    )


def json_response(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status, media_type="application/json")


def build_router(bus: Bus, store: EventStore) -> APIRouter:
    """Routes under /api/events, bound to one bus and one store."""
    router = APIRouter(prefix="/api/events", tags=["events"])

    @router.post(
        "",
        status_code=202,
        summary="Accept events",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "oneOf": [
                                {"$ref": "#/components/schemas/Event"},
                                {"type": "array", "items": {"$ref": "#/components/schemas/Event"}},
                            ]
                        }
                    },
                    "application/cloudevents+json": {"schema": {"type": "object"}},
                    "application/cloudevents-batch+json": {"schema": {"type": "array"}},
                },
            }
        },
    )
    async def post_events(request: Request) -> Response:
        """One event, a JSON array of events, or CloudEvents 1.0 (structured, batch, binary).

        Answers 202 with the accepted ids only after JetStream acknowledged every event.
        """
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > MAX_REQUEST_BYTES:
            EVENTS_REJECTED.labels("http", "too_large").inc()
            return problem(
                413, f"the request is over {MAX_REQUEST_BYTES:,} bytes; send smaller batches"
            )
        body = await request.body()
        try:
            received = parse_body(body, request.headers.get("content-type", ""), request.headers)
            encoded = encode(received)
        except EventTooLarge as exc:
            EVENTS_REJECTED.labels("http", "too_large").inc()
            return problem(413, str(exc), exc.field)
        except InvalidEvent as exc:
            EVENTS_REJECTED.labels("http", "invalid").inc()
            return problem(422, str(exc), exc.field)
        try:
            await bus.publish_events(encoded)
        except BusUnavailable as exc:
            EVENTS_REJECTED.labels("http", "bus_unavailable").inc()
            return problem(503, str(exc), **{"Retry-After": str(int(exc.retry_after))})
        EVENTS_ACCEPTED.labels("http").inc(len(received))
        return json_response({"accepted": [str(e.id) for e in received]}, 202)

    def page_response(request: Request, page: Any) -> Response:
        next_page = None
        if page.next_token:
            next_page = str(
                request.url_for("read_next_page").include_query_params(
                    **{"page-token": page.next_token}
                )
            )
        return Response(
            b'{"events":['
            + b",".join(e.model_dump_json().encode() for e in page.events)
            + b'],"total":'
            + orjson.dumps(page.total)
            + b',"next_page":'
            + orjson.dumps(next_page)
            + b"}",
            media_type="application/json",
        )

    @router.post("/filter", summary="Query stored events")
    async def read_events(
        request: Request, query: FilterRequest | None = Body(default=None)
    ) -> Response:
        """Events matching a Prefect-style filter, newest first unless `order` is ASC."""
        query = query or FilterRequest()
        return page_response(request, await store.read(query.filter, query.limit))

    @router.get("/filter/next", summary="Next page of a query", name="read_next_page")
    async def read_next_page(
        request: Request, page_token: Annotated[str, Query(alias="page-token")]
    ) -> Response:
        """The page after the one whose `next_page` link brought you here."""
        try:
            flt, limit, after = decode_token(page_token)
        except InvalidEvent as exc:
            return problem(400, str(exc), exc.field)
        return page_response(request, await store.read(flt, limit, after))

    @router.post("/count-by/{countable}", summary="Count events by day, hour, event or resource")
    async def count_by(
        countable: Countable, query: CountByRequest | None = Body(default=None)
    ) -> Response:
        """Counts per group for the events matching the filter."""
        buckets = await store.count_by(countable, (query or CountByRequest()).filter)
        return json_response(
            [
                {
                    "value": b.value,
                    "label": b.value,
                    "count": b.count,
                    "start_time": b.start_time.isoformat() if b.start_time else None,
                    "end_time": b.end_time.isoformat() if b.end_time else None,
                }
                for b in buckets
            ]
        )

    @router.get("/{event_id}", summary="One stored event")
    async def read_event(event_id: str) -> Response:
        """The stored event with this id."""
        event = await store.get(event_id)
        if event is None:
            raise HTTPException(
                404,
                f"no stored event has id {event_id}; "
                "it may not be stored yet or was swept by retention",
            )
        return Response(event.model_dump_json(), media_type="application/json")

    return router
