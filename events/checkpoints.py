"""Pongs that mean "on JetStream": the websocket protocol tripwire serves with.

Prefect's events client counts every event it sent before a ping as delivered once the
pong comes back, and after a reconnect resends only the events after its last answered
ping. uvicorn, like websocket servers generally, answers a ping the moment it parses it,
before the app has read the frames that came before it. ASGI has no ping message, so no
app can do better through it.

`CheckpointProtocol` is uvicorn's websockets (sans-io) protocol with one change, installed
with uvicorn's `ws` setting: a route that opts in (`Checkpoints.hold`) has each pong held
until it reports the data messages before that ping handled (`Checkpoints.handled`). Other
routes' pings are answered at once, as before. A route finds its `Checkpoints` in the ASGI
scope under `extensions["tripwire.checkpoints"]`; under another server there is none.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

from starlette.websockets import WebSocket
from uvicorn.config import Config
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.server import ServerState
from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.protocol import State
from websockets.server import ServerProtocol

EXTENSION = "tripwire.checkpoints"

_DATA = (Opcode.TEXT, Opcode.BINARY, Opcode.CONT)


class _Connection(ServerProtocol):
    """websockets' server side, numbering complete data messages as they are parsed and,
    while holding, keeping each pong with the number of messages that came before its
    ping."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.messages = 0  # complete data messages parsed so far
        self.handled = 0  # messages the route reported handled
        self.holding = False
        self.held: deque[tuple[int, Frame]] = deque()

    def recv_frame(self, frame: Frame) -> None:
        if frame.fin and frame.opcode in _DATA:
            self.messages += 1
        super().recv_frame(frame)

    def send_frame(self, frame: Frame) -> None:
        # The only pongs a server sends are its answers to pings, made in recv_frame.
        if frame.opcode is Opcode.PONG and self.holding and self.messages > self.handled:
            self.held.append((self.messages, frame))
            return
        super().send_frame(frame)

    def release(self, handled: int) -> None:
        """Send the pongs of pings that came after no more than `handled` messages."""
        self.handled = max(self.handled, handled)
        while self.held and self.held[0][0] <= self.handled:
            _, frame = self.held.popleft()
            if self.state is State.OPEN:  # nothing may follow a close frame
                super().send_frame(frame)


class CheckpointProtocol(WebSocketsSansIOProtocol):
    """uvicorn's websockets protocol whose routes may hold pongs (`Checkpoints`)."""

    conn: _Connection

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        made = self.conn  # the same settings, on the subclass (nothing is parsed yet)
        self.conn = _Connection(
            extensions=made.available_extensions,
            max_size=(made.max_message_size, made.max_fragment_size),
            logger=made.logger,
        )

    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        if self.response.status_code == 101:  # the app runs once this returns
            extensions: dict[str, Any] = self.scope.setdefault("extensions", {})
            extensions[EXTENSION] = Checkpoints(self)


class Checkpoints:
    """A route's hold on its connection's pongs."""

    def __init__(self, protocol: CheckpointProtocol) -> None:
        self._protocol = protocol

    def hold(self) -> None:
        """From now on, answer a ping only once the messages before it are handled."""
        self._protocol.conn.holding = True

    def handled(self, messages: int) -> None:
        """The first `messages` data messages of the connection are handled: answer the
        pings that came after no more than these."""
        protocol = self._protocol
        protocol.conn.release(messages)
        output = protocol.conn.data_to_send()
        if output and not protocol.transport.is_closing():
            protocol.transport.write(b"".join(output))


def checkpoints(websocket: WebSocket) -> Checkpoints | None:
    """The connection's `Checkpoints`; None when the server is not `CheckpointProtocol`."""
    found = websocket.scope.get("extensions", {}).get(EXTENSION)
    return found if isinstance(found, Checkpoints) else None
