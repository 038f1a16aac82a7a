"""HTTP routes for automations in Prefect's shape: CRUD, pause/resume, apply, decisions.

Prefect's client works against them unchanged (`POST /automations/`, `POST
/automations/filter`, `PUT`/`PATCH`/`DELETE /automations/{id}`); tripwire adds names
wherever an id is accepted, `apply` for the CLI and `decisions` for `tripwire explain`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Body, Query, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from events.api import json_response, problem
from events.errors import ApplyRefused
from events.problems import ReadableErrors, refused
from events.reconcile import ChangeKind
from events.store import EventStore
from triggers.automation import Automation
from triggers.decisions import read_decisions
from triggers.explain import match_report
from triggers.repository import (
    AutomationExists,
    AutomationNotFound,
    AutomationStore,
    StoredAutomation,
)

log = logging.getLogger("tripwire.triggers")

OnChange = Callable[[], Awaitable[object]]
MAX_DECISIONS = 1000


class AutomationBody(Automation):
    """An automation as sent to create or replace; `created` and `updated`, as GET returns
    them, are accepted and ignored so a fetched automation can be sent back."""

    created: Any = Field(default=None, exclude=True, description="Ignored: set by tripwire.")
    updated: Any = Field(default=None, exclude=True, description="Ignored: set by tripwire.")

    def automation(self) -> Automation:
        """The automation without the ignored fields."""
        return Automation.model_validate(
            {name: getattr(self, name) for name in Automation.model_fields}
        )


class AutomationPatch(BaseModel):
    """Body of PATCH: Prefect's pause (`false`) and resume (`true`)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(description="false pauses the automation, true resumes it.")


class NameFilter(BaseModel):
    """Prefect's `AutomationFilterName`."""

    any_: list[str] | None = Field(default=None, description="Only automations with these names.")


class AutomationFilter(BaseModel):
    """Prefect's `AutomationFilter`; fields other than `name` are accepted and ignored."""

    name: NameFilter | None = None


class FilterRequest(BaseModel):
    """Body of POST /api/automations/filter, as Prefect's client sends it."""

    automations: AutomationFilter | None = None
    sort: str | None = Field(default=None, description="Ignored: results are sorted by name.")
    limit: int | None = Field(default=None, ge=0, description="At most this many.")
    offset: int = Field(default=0, ge=0, description="Skip this many first.")


class ApplyRequest(BaseModel):
    """Body of POST /api/automations/apply: the complete set of definitions to apply."""

    model_config = ConfigDict(extra="forbid")

    automations: list[Automation] = Field(description="Created or updated by name.")


def _not_found(exc: AutomationNotFound) -> Response:
    return problem(404, str(exc))


def _conflict(name: str, exc: IntegrityError) -> Response:
    # The name is checked first, so what collides is nearly always an id (an automation
    # renamed with PUT keeps its id; a definition copied under a new name keeps `id`).
    log.info("automation %r conflicts with a stored one: %s", name, exc.orig)
    return problem(
        409,
        f"{name!r} cannot be stored: its id is already used by another automation; drop "
        "`id` from the definition (or give it a new one) and try again",
        "id",
    )


def build_router(
    automations: AutomationStore, db: AsyncEngine, on_change: OnChange | None = None
) -> APIRouter:
    """Routes under /api/automations; `on_change` runs after every successful change (it
    reports its own failures: the change is committed by then)."""
    router = APIRouter(prefix="/api/automations", tags=["automations"], route_class=ReadableErrors)

    async def changed() -> None:
        if on_change is not None:
            await on_change()

    @router.post("/", status_code=201, summary="Create an automation")
    @router.post("", status_code=201, include_in_schema=False)
    async def create_automation(body: AutomationBody) -> Response:
        """A new automation (Prefect's shape); 409 when the name is taken."""
        automation = body.automation()
        try:
            stored = await automations.create(automation)
        except ApplyRefused as exc:
            return refused(exc)
        except AutomationExists as exc:
            return problem(409, str(exc), "name")
        except IntegrityError as exc:
            return _conflict(automation.name, exc)
        await changed()
        return json_response(stored.as_json(), 201)

    def listing(found: list[StoredAutomation]) -> Response:
        return json_response([s.as_json() for s in found])

    @router.get("/", summary="Every automation, by name")
    @router.get("", include_in_schema=False)
    async def list_automations() -> Response:
        """Every automation, sorted by name."""
        return listing(await automations.all())

    @router.post("/filter", summary="Automations, by name (Prefect's list call)")
    async def filter_automations(query: FilterRequest | None = Body(default=None)) -> Response:
        """Automations sorted by name; an empty body lists them all."""
        query = query or FilterRequest()
        found = await automations.all()
        names = (
            query.automations.name.any_ if query.automations and query.automations.name else None
        )
        if names is not None:
            found = [s for s in found if s.automation.name in names]
        found = found[query.offset :]
        if query.limit is not None:
            found = found[: query.limit]
        return listing(found)

    @router.post("/apply", summary="Create, update (and prune) automations by name")
    async def apply_automations(
        body: ApplyRequest,
        prune: bool = Query(False, description="Delete stored automations not in the body."),
        dry_run: bool = Query(False, description="Report what would change; change nothing."),
    ) -> Response:
        """Idempotent: applying the same definitions again reports them `unchanged`.
        `reset_triggers` names the triggers whose state an update or delete drops, and
        `open_windows` counts their open windows."""
        try:
            changes = await automations.apply(body.automations, prune=prune, dry_run=dry_run)
        except ApplyRefused as exc:
            return refused(exc)
        if not dry_run and any(c.kind is not ChangeKind.unchanged for c in changes):
            await changed()
        return json_response([c.as_json() for c in changes])

    @router.get("/{ref:path}/decisions", summary="Why an automation did or did not fire")
    async def automation_decisions(
        ref: str,
        event_id: str | None = Query(None, description="Only decisions about this event."),
        last: int = Query(20, ge=1, le=MAX_DECISIONS, description="The newest this many."),
    ) -> Response:
        """The newest decisions, oldest first. With `event_id` and nothing recorded, what
        matching says about the stored event now (`recorded: false`)."""
        try:
            stored = await automations.get(ref)
        except AutomationNotFound as exc:
            return _not_found(exc)
        found = await read_decisions(db, str(stored.id), event_id=event_id, last=last)
        if not found and event_id is not None:
            event = await EventStore(db).get(event_id)
            if event is not None:
                return json_response(match_report(stored.automation, event))
        return json_response([{**d.as_json(), "recorded": True} for d in found])

    @router.get("/{ref:path}", summary="One automation, by id or name")
    async def read_automation(ref: str) -> Response:
        """The automation in Prefect's shape, with `created` and `updated`."""
        try:
            return json_response((await automations.get(ref)).as_json())
        except AutomationNotFound as exc:
            return _not_found(exc)

    @router.put("/{ref:path}", status_code=204, summary="Replace an automation")
    async def replace_automation(ref: str, body: AutomationBody) -> Response:
        """A new definition for the automation (its id stays); trigger state is kept for
        triggers that did not change."""
        automation = body.automation()
        try:
            current = await automations.get(ref)
        except AutomationNotFound as exc:
            return _not_found(exc)
        if automation.id is not None and automation.id != current.id:
            return problem(
                422,
                f"the body's id {automation.id} is not the id of {current.automation.name!r} "
                f"({current.id}); drop `id` from the body or PUT to that automation",
                "id",
            )
        try:
            await automations.replace(str(current.id), automation)
        except AutomationNotFound as exc:
            return _not_found(exc)
        except AutomationExists as exc:
            return problem(409, f"{exc}; pick another name", "name")
        await changed()
        return Response(status_code=204)

    @router.patch("/{ref:path}", status_code=204, summary="Pause or resume an automation")
    async def patch_automation(ref: str, body: AutomationPatch) -> Response:
        """`{"enabled": false}` pauses, `{"enabled": true}` resumes; state is kept."""
        try:
            await automations.set_enabled(ref, body.enabled)
        except AutomationNotFound as exc:
            return _not_found(exc)
        await changed()
        return Response(status_code=204)

    @router.delete("/{ref:path}", status_code=204, summary="Delete an automation")
    async def delete_automation(ref: str) -> Response:
        """Deletes it with its trigger state and decisions."""
        try:
            await automations.delete(ref)
        except AutomationNotFound as exc:
            return _not_found(exc)
        await changed()
        return Response(status_code=204)

    return router
