"""/api/slas: apply SLAs from files, list them with their state, one SLA's windows."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import orjson
from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from events.api import json_response, problem
from events.errors import ApplyRefused
from events.problems import ReadableErrors, refused
from sla.errors import SLANotFound
from sla.model import SLA
from sla.store import SLAStore, StoredSLA

Changed = Callable[[], Awaitable[object]]


class SLAsBody(BaseModel):
    """Body of POST /api/slas/apply: the complete set of SLAs to apply."""

    model_config = ConfigDict(extra="forbid")

    slas: list[SLA] = Field(description="Created or updated by name.")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def window_json(window: Any, sla: SLA) -> dict[str, Any]:
    """One key's state: missed (and not recovered yet), at-risk (warned, not met yet), or
    ok."""
    warned = sla.warn_before is not None and window.warn_at is None and window.armed
    if window.missed is not None:
        state = "missed"
    elif warned and window.met is None:
        state = "at-risk"
    else:
        state = "ok"
    return {
        "key": orjson.loads(window.key),
        "state": state,
        "resource": window.labels,
        "window_start": _iso(window.opened),
        "deadline": _iso(window.deadline),
        "due": _iso(window.due) if window.armed else None,
        "met": _iso(window.met),
        "missed": _iso(window.missed),
        "last_seen": _iso(window.last_seen),
        "last_event": window.last_event,
    }


def summary_json(stored: StoredSLA, windows: list[dict[str, Any]]) -> dict[str, Any]:
    sla = stored.sla
    dues = [w["due"] for w in windows if w["due"] is not None]
    return {
        "id": stored.id,
        "name": sla.name,
        "kind": sla.kind,
        "severity": sla.severity,
        "enabled": sla.enabled,
        "keys": len(windows),
        "missed": sum(1 for w in windows if w["state"] == "missed"),
        "next_due": min(dues) if dues else None,
    }


def build_router(store: SLAStore, changed: Changed | None = None) -> APIRouter:
    """Routes under /api/slas; `changed` is told after an apply that changed something."""
    router = APIRouter(prefix="/api/slas", tags=["slas"], route_class=ReadableErrors)

    async def windows_of(stored: StoredSLA) -> list[dict[str, Any]]:
        return [window_json(w, stored.sla) for w in await store.windows(stored.id)]

    @router.get("", summary="Every SLA with its state: keys watched, open misses, next due")
    async def list_slas() -> Response:
        return json_response([summary_json(s, await windows_of(s)) for s in await store.all()])

    @router.post("/apply", summary="Create, update (and prune) SLAs by name")
    async def apply_slas(
        body: SLAsBody,
        prune: bool = Query(False, description="Delete stored SLAs not in the body."),
        dry_run: bool = Query(False, description="Report what would change; change nothing."),
    ) -> Response:
        """`{"slas": [...]}` → one change per SLA (created, updated, unchanged, deleted);
        `open_windows` counts the keys whose state an update or delete drops."""
        try:
            changes = await store.apply(body.slas, prune=prune, dry_run=dry_run)
        except ApplyRefused as exc:
            return refused(exc)
        if changed is not None and not dry_run:
            await changed()
        return json_response([c.as_json() for c in changes])

    @router.get("/{ref:path}", summary="One SLA: its definition and each key's window")
    async def read_sla(ref: str) -> Response:
        try:
            stored = await store.get(ref)
        except SLANotFound as exc:
            return problem(404, str(exc))
        windows = await windows_of(stored)
        return json_response({**summary_json(stored, windows), "definition": stored.as_json(),
                              "windows": windows})  # fmt: skip

    @router.delete("/{ref:path}", status_code=204, summary="Delete an SLA and its state")
    async def delete_sla(ref: str) -> Response:
        try:
            await store.delete(ref)
        except SLANotFound as exc:
            return problem(404, str(exc))
        if changed is not None:
            await changed()
        return Response(status_code=204)

    return router
