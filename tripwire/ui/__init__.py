"""The web dashboard at /ui/: server-rendered pages over the engine's stores, served by
the api role's own FastAPI app (no second server, no JavaScript build)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from alerts.api import Deliver
from tripwire.auth import ApiAuth
from tripwire.engine import Engine
from tripwire.ui.access import Sessions
from tripwire.ui.changes import build_changes
from tripwire.ui.context import Dashboard, Refused, Reload
from tripwire.ui.live import build_live
from tripwire.ui.pages import build_pages

__all__ = ["mount_dashboard"]


def mount_dashboard(
    app: FastAPI, engine: Engine, auth: ApiAuth, reload: Reload | None, deliver: Deliver
) -> None:
    """Serve the dashboard at /ui/ of `app`, with / and /ui redirecting there; `deliver`
    publishes what acknowledging or resolving an alert decided."""
    board = Dashboard(engine, Sessions(auth), reload, deliver)

    async def refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Refused)
        return exc.answer

    app.add_exception_handler(Refused, refused)
    app.mount("/ui/static", StaticFiles(packages=[("tripwire.ui", "static")]), name="ui-static")
    app.include_router(build_live(board))  # before /ui/events/{id}
    app.include_router(build_changes(board))
    app.include_router(build_pages(board))

    @app.get("/", include_in_schema=False)
    @app.get("/ui", include_in_schema=False)
    async def to_dashboard() -> RedirectResponse:
        return RedirectResponse("/ui/", status_code=307)
