"""An alert's page: the alert whole (labels, times, acknowledgement, resolution), the
firings that fed it and its notification groups; and the forms that acknowledge and
resolve it, with what was typed kept when a field is refused."""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar

from fastapi import Request
from fastapi.responses import Response
from pydantic import BaseModel, ValidationError

from alerts.store import AlertNotFound
from events.timestamps import as_utc
from tripwire.ui.access import Visitor
from tripwire.ui.context import Dashboard

Body = TypeVar("Body", bound=BaseModel)

FOR_HINT = "write it like 30m, 2h or 1d, or leave it empty to acknowledge until it resolves"


def _moment(text: str | None) -> datetime | None:
    """The store answers times as ISO text (for the API); the page shows them as times."""
    return as_utc(datetime.fromisoformat(text)) if text else None


def _firings(firings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**f, "fired": _moment(f["fired"])} for f in firings]


def _groups(groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**g, "sent": _moment(g["sent"]), "next": _moment(g["next"])} for g in groups]


def form_error(exc: ValidationError, typed: dict[str, str]) -> str:
    """The first refused field of an acknowledge or resolve form, named as the form names
    it (`for`, `comment`)."""
    error = exc.errors()[0]
    field = str(error["loc"][0]) if error["loc"] else "form"
    if field == "for":
        return f"for: {typed.get('for', '')!r} is not a duration longer than 0; {FOR_HINT}"
    return f"{field}: {str(error['msg']).removeprefix('Value error, ')}"


def checked(model: type[Body], typed: dict[str, str]) -> Body:
    """The form's fields as the API's body model takes them (empty fields left unset), so
    the dashboard refuses exactly what the API refuses."""
    return model.model_validate({k: v for k, v in typed.items() if v.strip()})


async def show_alert(
    board: Dashboard,
    request: Request,
    visitor: Visitor,
    alert_id: str,
    status: int = 200,
    **extra: Any,
) -> Response:
    try:
        alert, firings, groups = await board.engine.alerts.get(alert_id)
    except AlertNotFound:
        return board.not_found(
            request,
            visitor,
            f"No alert has the id {alert_id}. Resolved alerts are kept for a while, then "
            "swept; the alerts page lists those kept.",
        )
    why = (await board.engine.alerts.muting()).why(alert) if alert.open else {}
    return board.pages.render(
        request,
        visitor,
        "alert.html",
        status=status,
        alert=alert,
        why=why,
        labels=sorted(alert.labels.items()),
        firings=_firings(firings),
        groups=_groups(groups),
        **{"ack_error": None, "resolve_error": None, "typed": {}, **extra},
    )
