"""HTTP routes for the action ledger (list, inspect, re-run a failed action) and for the
named connections applied from YAML files."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import orjson
from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.exc import IntegrityError

from actions.connections import ConnectionDefinition, ConnectionStore
from actions.ledger import Ledger, Status
from actions.request import ActionRequest
from events.api import json_response, problem

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
            request = await ledger.rerun(action_id)
        except LookupError as exc:
            return problem(404, f"{exc}; see GET /api/actions?status=failed")
        except ValueError as exc:
            return problem(409, str(exc))
        entry = await ledger.get(action_id)
        assert entry is not None
        await resubmit(request, entry["round"])
        return json_response({"id": action_id, "round": entry["round"], "status": "pending"}, 202)

    return router


class ConnectionsBody(BaseModel):
    """Body of POST /api/connections/apply: the complete set of connections to apply."""

    model_config = ConfigDict(extra="forbid")

    connections: list[ConnectionDefinition] = Field(description="Created or updated by name.")


def _where(loc: tuple[int | str, ...]) -> str:
    """`connections[0].api_url`, as written in the body."""
    path = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in loc)
    return path.lstrip(".")


def _invalid(exc: ValidationError) -> Response:
    """A 422 naming every field at fault, the first one as `field`."""
    found = []
    for error in exc.errors():
        if error["type"] == "missing":
            message = f"'{error['loc'][-1]}' is required"
        elif error["type"] == "extra_forbidden":
            message = "is not a known field (check the spelling)"
        else:
            message = str(error["msg"]).removeprefix("Value error, ")
        found.append({"field": _where(error["loc"]), "message": message})
    detail = "; ".join(
        f"{e['field']}: {e['message']}" if e["field"] else e["message"] for e in found
    )
    data: dict[str, Any] = {"detail": detail, "errors": found}
    if found and found[0]["field"]:
        data["field"] = found[0]["field"]
    return json_response(data, 422)


def _body_schema() -> dict[str, Any]:
    """ConnectionsBody's JSON schema with the definition inlined (no `$defs` to resolve)."""
    schema = ConnectionsBody.model_json_schema()
    definitions = schema.pop("$defs")
    schema["properties"]["connections"]["items"] = definitions["ConnectionDefinition"]
    return schema


def build_connections_router(store: ConnectionStore) -> APIRouter:
    """Routes under /api/connections. Definitions are shown as stored: templates such as
    `{{ secret('KEY') }}`, never the secrets they render to."""
    router = APIRouter(prefix="/api/connections", tags=["connections"])

    @router.get("", summary="Named connections, by name (templates, not secrets)")
    async def list_connections() -> Response:
        return json_response([c.as_json() for c in await store.all()])

    @router.post(
        "/apply",
        summary="Create, update (and prune) connections by name",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _body_schema()}},
            }
        },
    )
    async def apply_connections(
        request: Request,
        prune: bool = Query(False, description="Delete stored connections not in the body."),
        dry_run: bool = Query(False, description="Report what would change; change nothing."),
    ) -> Response:
        """`{"connections": [...]}` → `[{"name", "change"}]`, change being created, updated,
        unchanged or deleted; applying the same definitions again reports them unchanged."""
        try:
            raw = orjson.loads(await request.body())
        except orjson.JSONDecodeError as exc:
            return problem(422, f"the body is not valid JSON ({exc})")
        try:
            body = ConnectionsBody.model_validate(raw)
        except ValidationError as exc:
            return _invalid(exc)
        seen: dict[str, int] = {}
        for index, connection in enumerate(body.connections):
            if connection.name in seen:
                return problem(
                    422,
                    f"{connection.name!r} is also connections[{seen[connection.name]}]; "
                    "names must be unique",
                    f"connections[{index}].name",
                )
            seen[connection.name] = index
        try:
            changes = await store.apply(body.connections, prune=prune, dry_run=dry_run)
        except IntegrityError:
            return problem(409, "a connection was created meanwhile by another apply; apply again")
        return json_response([c.as_json() for c in changes])

    return router
