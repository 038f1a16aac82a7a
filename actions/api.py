"""HTTP routes for the action ledger (list, inspect, re-run a failed action) and for the
named connections applied from YAML files."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from actions.connections import ConnectionDefinition, ConnectionStore
from actions.ledger import Ledger, Status
from actions.request import ActionRequest
from events.api import json_response, problem
from events.errors import ApplyRefused
from events.problems import ReadableErrors, refused

Resubmit = Callable[[ActionRequest, int], Awaitable[None]]

LISTED = (
    "id",
    "automation_id",
    "automation_name",
    "firing_id",
    "action_index",
    "action_type",
    "status",
    "attempts",
    "round",
    "status_code",
    "result",
    "last_error",
    "created",
    "started",
    "finished",
    "next_attempt",
    "duration_ms",
)


def entry_json(entry: dict[str, Any], *, with_request: bool = False) -> dict[str, Any]:
    """A ledger row for HTTP: times in ISO 8601, the request parsed when asked for."""
    data = {
        key: value.isoformat() if isinstance(value, datetime) else value
        for key, value in entry.items()
        if key in LISTED
    }
    if with_request:
        data["request"] = ActionRequest.model_validate_json(entry["request"]).model_dump(
            mode="json", by_alias=True
        )
    return data


async def retry(ledger: Ledger, resubmit: Resubmit, action_id: str) -> int:
    """Give a failed (dead-lettered) request a new round of attempts; returns the round.
    LookupError: no such request; ValueError: it has not failed."""
    request = await ledger.rerun(action_id)
    entry = await ledger.get(action_id)
    assert entry is not None
    await resubmit(request, entry["round"])
    return int(entry["round"])


def build_router(ledger: Ledger, resubmit: Resubmit) -> APIRouter:
    """Routes under /api/actions."""
    router = APIRouter(prefix="/api/actions", tags=["actions"])

    @router.get("", summary="Action requests, newest first")
    async def list_actions(
        status: Status | None = Query(None, description="Only this status (failed = dead)."),
        automation: str | None = Query(None, description="Only this automation (name or id)."),
        limit: int = Query(100, ge=1, le=1000),
    ) -> Response:
        entries = await ledger.list(status=status, automation=automation, limit=limit)
        return json_response([entry_json(e) for e in entries])

    @router.get("/{action_id}", summary="One action request with its ledger entry")
    async def read_action(action_id: str) -> Response:
        entry = await ledger.get(action_id)
        if entry is None:
            return problem(404, f"no action request with id {action_id}; see GET /api/actions")
        return json_response(entry_json(entry, with_request=True))

    @router.post("/{action_id}/retry", status_code=202, summary="Run a failed action again")
    async def retry_action(action_id: str) -> Response:
        """A failed (dead-lettered) request gets a new round of attempts."""
        try:
            round_ = await retry(ledger, resubmit, action_id)
        except LookupError as exc:
            return problem(404, f"{exc}; see GET /api/actions?status=failed")
        except ValueError as exc:
            return problem(409, str(exc))
        return json_response({"id": action_id, "round": round_, "status": "pending"}, 202)

    return router


class ConnectionsBody(BaseModel):
    """Body of POST /api/connections/apply: the complete set of connections to apply."""

    model_config = ConfigDict(extra="forbid")

    connections: list[ConnectionDefinition] = Field(description="Created or updated by name.")


def build_connections_router(store: ConnectionStore) -> APIRouter:
    """Routes under /api/connections. Definitions are shown as stored: templates such as
    `{{ secret('KEY') }}`, never the secrets they render to."""
    router = APIRouter(prefix="/api/connections", tags=["connections"], route_class=ReadableErrors)

    @router.get("", summary="Named connections, by name (templates, not secrets)")
    async def list_connections() -> Response:
        return json_response([c.as_json() for c in await store.all()])

    @router.post("/apply", summary="Create, update (and prune) connections by name")
    async def apply_connections(
        body: ConnectionsBody,
        prune: bool = Query(False, description="Delete stored connections not in the body."),
        dry_run: bool = Query(False, description="Report what would change; change nothing."),
    ) -> Response:
        """`{"connections": [...]}` → one change per connection, `kind` being created,
        updated, unchanged or deleted; the same definitions again report them unchanged."""
        try:
            changes = await store.apply(body.connections, prune=prune, dry_run=dry_run)
        except ApplyRefused as exc:
            return refused(exc)
        return json_response([c.as_json() for c in changes])

    return router
