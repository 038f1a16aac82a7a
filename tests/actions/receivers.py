"""Real HTTP receivers for executor tests: a uvicorn server on a free local port that records
every request and answers from a script (Slack's answers, any webhook's).

    async with Receiver() as hook:
        hook.script(Reply(429, "rate_limited", {"Retry-After": "7"}))
        ... call hook.url("/services/T1/B2/secret") ...
        [request] = await hook.wait_for(1)
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

import uvicorn

from events.embedded import free_port

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]


@dataclass(frozen=True)
class Reply:
    """One scripted answer; `hang` holds the request open until the receiver stops."""

    status: int = 200
    body: str = "ok"
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False


def slack_error(status: int, error: str, **headers: str) -> Reply:
    """Slack's incoming-webhook error: the status and the error code as plain text."""
    return Reply(status, error, {"content-type": "text/plain", **headers})


@dataclass(frozen=True)
class Received:
    """One request as it arrived."""

    method: str
    path: str
    query: str
    headers: dict[str, str]  # names lower-cased
    body: bytes
    at: float  # time.monotonic() on arrival

    @property
    def text(self) -> str:
        return self.body.decode()

    def json(self) -> Any:
        return json.loads(self.body)


async def read_body(receive: Callable[[], Awaitable[Message]]) -> bytes:
    """The whole body of an ASGI HTTP request, however many messages it comes in."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


class Receiver:
    """A local HTTP server: answers from `script`, then `default`; records every request."""

    def __init__(self, default: Reply | None = None) -> None:
        self.default = default or Reply()
        self.port = free_port()
        self.requests: list[Received] = []
        self._script: deque[Reply] = deque()
        self._released = asyncio.Event()
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    def script(self, *replies: Reply) -> None:
        """Answer the next requests with these, in order."""
        self._script.extend(replies)

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def wait_for(self, count: int, timeout: float = 5.0) -> list[Received]:
        """The first `count` requests, once they have arrived."""
        deadline = time.monotonic() + timeout
        while len(self.requests) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.requests)} of {count} requests arrived")
            await asyncio.sleep(0.01)
        return self.requests[:count]

    async def __call__(
        self,
        scope: Scope,
        receive: Callable[[], Awaitable[Message]],
        send: Callable[[Message], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            return
        at = time.monotonic()
        body = await read_body(receive)
        self.requests.append(
            Received(
                method=scope["method"],
                path=scope["path"],
                query=scope["query_string"].decode(),
                headers={k.decode().lower(): v.decode() for k, v in scope["headers"]},
                body=body,
                at=at,
            )
        )
        reply = self._script.popleft() if self._script else self.default
        if reply.hang:
            await self._released.wait()
        headers = {"content-type": "text/plain", **{k.lower(): v for k, v in reply.headers.items()}}
        await send(
            {
                "type": "http.response.start",
                "status": reply.status,
                "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
            }
        )
        await send({"type": "http.response.body", "body": reply.body.encode()})

    async def __aenter__(self) -> Self:
        config = uvicorn.Config(
            self,
            host="127.0.0.1",
            port=self.port,
            lifespan="off",
            ws="none",
            http="h11",
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=2,
        )
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve())
        deadline = time.monotonic() + 5
        while not self._server.started:
            if self._task.done() or time.monotonic() > deadline:
                await self._task
                raise RuntimeError(f"receiver did not start on port {self.port}")
            await asyncio.sleep(0.01)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._released.set()
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task
