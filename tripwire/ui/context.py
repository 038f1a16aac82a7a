"""What every dashboard route shares: the engine, who is asking, and the common answers
(sign in first, not found, not allowed)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import quote

from fastapi import Form, Request
from fastapi.responses import RedirectResponse, Response

from alerts.api import Deliver
from tripwire.auth import Access
from tripwire.engine import Engine
from tripwire.ui.access import Sessions, Visitor
from tripwire.ui.rendering import Pages

Reload = Callable[[], Awaitable[object]]


class Refused(Exception):
    """Raised by a route's dependency with the answer to give instead (sign in first, not
    allowed); `mount_dashboard` turns it into that answer."""

    def __init__(self, answer: Response) -> None:
        super().__init__(answer.status_code)
        self.answer = answer


class Dashboard:
    """One engine's dashboard; `deliver` publishes what a hand change to an alert decided,
    as the API does after one."""

    def __init__(
        self, engine: Engine, sessions: Sessions, reload: Reload | None, deliver: Deliver
    ) -> None:
        self.engine = engine
        self.sessions = sessions
        self.reload = reload
        self.deliver = deliver
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

    def looking(self, request: Request) -> Visitor:
        """A route dependency: the visitor, or off to sign in."""
        visitor = self.visitor(request)
        if visitor is None:
            raise Refused(self.sign_in(request))
        return visitor

    def changing(self, request: Request, csrf: str = Form("")) -> Visitor:
        """A route dependency for a change: a visitor who may change things, posting a
        form of this session (its CSRF token); otherwise the page that says why not."""
        visitor = self.looking(request)
        if not visitor.may_change:
            raise Refused(
                self.message(
                    request,
                    visitor,
                    403,
                    "Read-only",
                    "You signed in with a read-only key: you can look, not change. Sign in "
                    "with the API key or auth string to pause, retry, replay or acknowledge.",
                )
            )
        if not self.sessions.csrf_ok(visitor, csrf):
            raise Refused(
                self.message(
                    request,
                    visitor,
                    403,
                    "Form expired",
                    "This form did not come from this dashboard session (its CSRF token does "
                    "not match). Reload the page and try again.",
                )
            )
        return visitor
