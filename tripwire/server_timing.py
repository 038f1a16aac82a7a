"""`Server-Timing: app;dur=<ms>` on every HTTP answer: how long the app took to start
answering, which browsers' developer tools show and `bench.ui` reads."""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class ServerTiming:
    """Adds the header to each response's start; bodies stream on untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        async def timed(message: Message) -> None:
            if message["type"] == "http.response.start":
                elapsed = (time.perf_counter() - started) * 1000
                headers = [
                    *message.get("headers", []),
                    (b"server-timing", b"app;dur=%.1f" % elapsed),
                ]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, timed)
