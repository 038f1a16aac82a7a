"""What the dashboard changes (form POSTs): sign in and out, pause and resume an
automation, retry a failed action, replay an automation over stored events, acknowledge
and resolve an alert.

Each change checks that the visitor may change things and that the form carries this
visitor's CSRF token, then answers with a redirect back (303), so a reload does not post
again; a replay answers with its result instead.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from datetime import timedelta
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from actions.api import retry
from alerts.api import AcknowledgeBody, ResolveBody
from alerts.model import Alert
from alerts.store import AlertNotFound, AlertResolved
from events import clock
from triggers.replay import replay
from triggers.repository import AutomationNotFound
from triggers.results import Result
from tripwire.auth import Access
from tripwire.replaying import stored_events
from tripwire.ui.access import COOKIE, SESSION_SECONDS, Visitor
from tripwire.ui.alert_view import checked, form_error, show_alert
from tripwire.ui.automation_view import show_automation
from tripwire.ui.context import Dashboard

log = logging.getLogger("tripwire.ui")

REPLAY_MAX_HOURS = 168
REPLAY_MAX_EVENTS = 200_000  # a replay runs in the api process: bounded


def _back(target: str | None, default: str) -> str:
    """A redirect target that stays on the dashboard (never another site)."""
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/ui/"):
        return default
    return target


def _alert_page(alert_id: str) -> str:
    return f"/ui/alerts/{quote(alert_id, safe='')}"


def build_changes(board: Dashboard) -> APIRouter:
    router = APIRouter(prefix="/ui", include_in_schema=False)
    engine = board.engine

    @router.get("/login")
    async def login_form(request: Request, next: str = "/ui/") -> Response:
        visitor = board.sessions.visitor(request)
        return board.pages.render(
            request, visitor, "login.html", next=_back(next, "/ui/"), error=None
        )

    @router.post("/login")
    async def login(request: Request, secret: str = Form(""), next: str = Form("/ui/")) -> Response:
        access = board.sessions.auth.secret_access(secret.strip())
        if access is Access.none:
            return board.pages.render(
                request,
                Visitor(Access.none),
                "login.html",
                status=401,
                next=_back(next, "/ui/"),
                error="That key is not the API key, the auth string or a read-only key.",
            )
        answer = RedirectResponse(_back(next, "/ui/"), status_code=303)
        answer.set_cookie(
            COOKIE,
            board.sessions.issue(access),
            max_age=SESSION_SECONDS,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/",
        )
        return answer

    @router.post("/logout")
    async def logout(request: Request, csrf: str = Form("")) -> Response:
        visitor = board.visitor(request)
        if visitor is not None and not board.sessions.csrf_ok(visitor, csrf):
            return board.message(request, visitor, 403, "Form expired", "Reload and try again.")
        answer = RedirectResponse("/ui/login", status_code=303)
        answer.delete_cookie(COOKIE, path="/")
        return answer

    @router.post("/automations/{name:path}/enabled")
    async def set_enabled(
        request: Request,
        name: str,
        visitor: Visitor = Depends(board.changing),
        enabled: str = Form(""),
        back: str = Form(""),
    ) -> Response:
        choice = enabled.strip().lower()
        if choice not in ("true", "false"):
            return board.message(
                request, visitor, 400, "Not changed", "enabled: send true (resume) or false (pause)"
            )
        wanted = choice == "true"
        try:
            await engine.automations.set_enabled(name, wanted)
        except AutomationNotFound as exc:
            return board.not_found(request, visitor, str(exc))
        await board.reloaded()
        log.info("dashboard: %s %r", "resumed" if wanted else "paused", name)
        return RedirectResponse(_back(back, "/ui/automations"), status_code=303)

    @router.post("/actions/{action_id}/retry")
    async def retry_action(
        request: Request,
        action_id: str,
        visitor: Visitor = Depends(board.changing),
        back: str = Form(""),
    ) -> Response:
        try:
            await retry(engine.acting.ledger, engine.acting.resubmit, action_id)
        except LookupError as exc:
            return board.not_found(request, visitor, str(exc))
        except ValueError as exc:
            return board.message(request, visitor, 409, "Not retried", str(exc))
        return RedirectResponse(_back(back, "/ui/actions?status=failed"), status_code=303)

    @router.post("/automations/{name:path}/replay")
    async def replay_automation(
        request: Request,
        name: str,
        visitor: Visitor = Depends(board.changing),
        hours: str = Form("24"),
    ) -> Response:
        try:
            stored = await engine.automations.get(name)
        except AutomationNotFound as exc:
            return board.not_found(request, visitor, str(exc))
        if not hours.strip().isdigit() or not 1 <= int(hours) <= REPLAY_MAX_HOURS:
            return await show_automation(
                board,
                request,
                visitor,
                stored,
                replay_error=f"hours: give a whole number from 1 to {REPLAY_MAX_HOURS}",
                replay_hours=hours,
            )
        window = timedelta(hours=int(hours))
        now = clock.now()
        recorded = await stored_events(engine.store, window, limit=REPLAY_MAX_EVENTS + 1)
        capped = len(recorded) > REPLAY_MAX_EVENTS
        recorded = recorded[:REPLAY_MAX_EVENTS]
        # As if applied at the start of the range: enabled, whatever its switch says now.
        automation = stored.automation.model_copy(update={"enabled": True})
        report = await replay(
            [automation],
            recorded,
            start=now - window,
            until=recorded[-1].occurred if capped and recorded else now,
            max_depth=engine.settings.max_cascade_depth,
        )
        return await show_automation(
            board,
            request,
            visitor,
            stored,
            replayed=report,
            replay_hours=hours,
            replay_capped=REPLAY_MAX_EVENTS if capped else None,
        )

    # Who acknowledged or resolved an alert here: the dashboard knows no names, only
    # whether its visitors sign in.
    by = "dashboard (signed in)" if board.sessions.auth.enabled else "dashboard"

    async def changed(
        request: Request,
        visitor: Visitor,
        alert_id: str,
        change: Awaitable[tuple[Alert, Result]],
        done: str,
    ) -> Response:
        """A hand change's answer: back to the alert once what it decided is published."""
        try:
            _, result = await change
        except AlertNotFound as exc:
            return board.not_found(request, visitor, str(exc))
        except AlertResolved as exc:
            return board.message(request, visitor, 409, f"Not {done}", str(exc))
        await board.deliver(result)
        log.info("dashboard: %s alert %s", done, alert_id)
        return RedirectResponse(_alert_page(alert_id), status_code=303)

    @router.post("/alerts/{alert_id}/acknowledge")
    async def acknowledge_alert(
        request: Request,
        alert_id: str,
        visitor: Visitor = Depends(board.changing),
        for_: str = Form("", alias="for"),
        comment: str = Form(""),
    ) -> Response:
        typed = {"for": for_, "comment": comment}
        try:
            body = checked(AcknowledgeBody, {**typed, "by": by})
        except ValidationError as exc:
            error = form_error(exc, typed)
            return await show_alert(
                board, request, visitor, alert_id, status=400, ack_error=error, typed=typed
            )
        change = engine.alerts.acknowledge(
            alert_id, for_=body.for_, by=body.by, comment=body.comment
        )
        return await changed(request, visitor, alert_id, change, "acknowledged")

    @router.post("/alerts/{alert_id}/resolve")
    async def resolve_alert(
        request: Request,
        alert_id: str,
        visitor: Visitor = Depends(board.changing),
        comment: str = Form(""),
    ) -> Response:
        typed = {"comment": comment}
        try:
            body = checked(ResolveBody, {**typed, "by": by})
        except ValidationError as exc:
            error = form_error(exc, typed)
            return await show_alert(
                board, request, visitor, alert_id, status=400, resolve_error=error, typed=typed
            )
        change = engine.alerts.resolve(alert_id, by=body.by, comment=body.comment)
        return await changed(request, visitor, alert_id, change, "resolved")

    return router
