"""/api/alerts: list alerts, read one with its firings and groups, acknowledge and
resolve by hand; /api/silences: add, list and expire silences."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from alerts.model import Alert
from alerts.silences import AdHocSilence
from alerts.silencing import SilenceExpired, SilenceNotFound, SilenceStore
from alerts.store import AlertNotFound, AlertResolved, AlertStore
from events.api import json_response, problem
from events.durations import Duration
from events.problems import ReadableErrors
from triggers.results import Result

Deliver = Callable[[Result], Awaitable[None]]
State = Literal["firing", "acknowledged", "resolved", "silenced", "inhibited"]


class AcknowledgeBody(BaseModel):
    """Body of POST /api/alerts/{id}/acknowledge."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    for_: Duration | None = Field(
        default=None,
        alias="for",
        gt=timedelta(0),
        description="Acknowledged for this long (e.g. 2h); then it fires again if still open. "
        "Unset: until it resolves.",
    )
    by: str | None = Field(default=None, max_length=200, description="Who is on it.")
    comment: str | None = Field(default=None, max_length=2000, description="What is being done.")


class ResolveBody(BaseModel):
    """Body of POST /api/alerts/{id}/resolve."""

    model_config = ConfigDict(extra="forbid")

    by: str | None = Field(default=None, max_length=200, description="Who resolved it.")
    comment: str | None = Field(default=None, max_length=2000, description="Why.")


def build_router(store: AlertStore, deliver: Deliver) -> APIRouter:
    """Routes under /api/alerts; `deliver` publishes what a hand change decided."""
    router = APIRouter(prefix="/api/alerts", tags=["alerts"], route_class=ReadableErrors)

    @router.get("", summary="Alerts, newest first")
    async def list_alerts(
        state: State | None = Query(None, description="Only alerts in this state."),
        name: str | None = Query(None, description="Only alerts of this automation or SLA."),
        before: datetime | None = Query(None, description="Last fired before this: next page."),
        limit: int = Query(100, ge=1, le=1000),
    ) -> Response:
        found = await store.page(state=state, name=name, before=before, limit=limit)
        muting = await store.muting()
        return json_response([{**a.as_json(), **muting.why(a)} for a in found])

    @router.get("/{alert_id}", summary="One alert with the firings that fed it and its groups")
    async def read_alert(alert_id: str) -> Response:
        try:
            alert, firings, groups = await store.get(alert_id)
        except AlertNotFound as exc:
            return problem(404, str(exc))
        why = (await store.muting()).why(alert)
        return json_response({**alert.as_json(), **why, "firings": firings, "groups": groups})

    async def changed(change: Awaitable[tuple[Alert, Result]]) -> Response:
        """A hand change's answer: the alert, after what it decided is published."""
        try:
            alert, result = await change
        except AlertNotFound as exc:
            return problem(404, str(exc))
        except AlertResolved as exc:
            return problem(409, str(exc))
        await deliver(result)
        return json_response(alert.as_json())

    @router.post("/{alert_id}/acknowledge", summary="Someone is on it: stop the repeats")
    async def acknowledge(alert_id: str, body: AcknowledgeBody | None = None) -> Response:
        body = body or AcknowledgeBody()
        return await changed(
            store.acknowledge(alert_id, for_=body.for_, by=body.by, comment=body.comment)
        )

    @router.post("/{alert_id}/resolve", summary="Resolve by hand: groups send resolved notices")
    async def resolve(alert_id: str, body: ResolveBody | None = None) -> Response:
        body = body or ResolveBody()
        return await changed(store.resolve(alert_id, by=body.by, comment=body.comment))

    return router


def build_silences_router(
    store: SilenceStore, deliver: Deliver, changed: Callable[[], Awaitable[None]]
) -> APIRouter:
    """Routes under /api/silences: hand silences and the maintenance windows; `changed`
    tells the actions roles when one is added or expired."""
    router = APIRouter(prefix="/api/silences", tags=["alerts"], route_class=ReadableErrors)

    @router.get("", summary="Silences in force or to come, then the maintenance windows")
    async def list_silences(
        all_: bool = Query(False, alias="all", description="Expired silences too."),
    ) -> Response:
        return json_response(await store.listing(everything=all_))

    @router.post("", status_code=201, summary="Silence the alerts the matchers select")
    async def add_silence(body: AdHocSilence) -> Response:
        try:
            silence, result = await store.add(body)
        except ValueError as exc:
            return problem(422, str(exc), "ends")
        await deliver(result)
        await changed()
        return json_response(silence, 201)

    @router.delete("/{silence_id}", summary="Expire a silence now")
    async def expire_silence(silence_id: str) -> Response:
        try:
            expired = await store.expire(silence_id)
        except SilenceNotFound as exc:
            return problem(404, str(exc))
        except SilenceExpired as exc:
            return problem(409, str(exc))
        await changed()
        return json_response(expired)

    return router
