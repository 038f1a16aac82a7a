"""What every dashboard route shares: the engine, who is asking, and the common answers
(sign in first, not found, not allowed)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from tripwire.auth import Access
from tripwire.engine import Engine
from tripwire.ui.access import Sessions, Visitor
from tripwire.ui.rendering import Pages

Reload = Callable[[], Awaitable[object]]


class Dashboard:
    """One engine's dashboard."""

    def __init__(self, engine: Engine, sessions: Sessions, reload: Reload | None) -> None:
        self.engine = engine
        self.sessions = sessions
        self.reload = reload
        self.pages = Pages(sessions)

    def visitor(self, request: Request) -> Visitor | None:
        """Who is asking, or None when they must sign in first."""
        visitor = self.sessions.visitor(request)
        return visitor if visitor.access is not Access.none else None

    def sign_in(self, request: Request) -> Response:
        """Off to the sign-in form, coming back here afterwards."""
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/ui/login?next={quote(target)}", status_code=303)

    def not_found(self, request: Request, visitor: Visitor, detail: str) -> Response:
        return self.message(request, visitor, 404, "Not found", detail)

    def message(
        self, request: Request, visitor: Visitor, status: int, title: str, detail: str
    ) -> Response:
        return self.pages.render(
            request, visitor, "message.html", status=status, title=title, detail=detail
        )

    async def reloaded(self) -> None:
        """Tell a worker in this process about a change at once (others poll for it)."""
        if self.reload is not None:
            await self.reload()
