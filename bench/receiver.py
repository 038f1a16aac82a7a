"""A minimal, fast webhook target for the actions benchmark.

    python -m bench.receiver --port P [--host 127.0.0.1]

A raw ASGI app under uvicorn (uvloop, httptools, no access log):
- POST /hook with a JSON body `{"sent": <epoch seconds>, "n": <int>}` answers 200 and
  records `now - sent` in milliseconds (the dispatch latency, both clocks this machine's)
  and `n` (to tell repeats from distinct requests);
- GET /stats answers `{"count", "distinct", "bad", "first", "last"}` (first and last
  arrival, epoch seconds), with `latencies=1` also `latencies_ms` (in arrival order), and
  with `reset=1` clears everything after answering.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any
from urllib.parse import parse_qs

import orjson
import uvicorn

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_JSON = [(b"content-type", b"application/json")]
_EMPTY = [(b"content-length", b"0")]


class Receiver:
    """The ASGI app and what it recorded."""

    def __init__(self) -> None:
        self.latencies_ms: list[float] = []
        self.seen: set[int] = set()
        self.bad = 0  # POSTs whose body was not the benchmark's
        self.first: float | None = None
        self.last: float | None = None

    def reset(self) -> None:
        self.latencies_ms = []
        self.seen = set()
        self.bad = 0
        self.first = self.last = None

    def stats(self, latencies: bool) -> dict[str, Any]:
        found: dict[str, Any] = {
            "count": len(self.latencies_ms),
            "distinct": len(self.seen),
            "bad": self.bad,
            "first": self.first,
            "last": self.last,
        }
        if latencies:
            found["latencies_ms"] = self.latencies_ms
        return found

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] != "http":
            return
        method, path = scope["method"], scope["path"]
        if method == "POST" and path == "/hook":
            body = await _body(receive)
            now = time.time()
            self._record(body, now)
            await _answer(send, 200, None)
        elif method == "GET" and path == "/stats":
            query = parse_qs(scope["query_string"].decode())
            answer = orjson.dumps(self.stats(query.get("latencies") == ["1"]))
            if query.get("reset") == ["1"]:
                self.reset()
            await _answer(send, 200, answer)
        else:
            await _answer(send, 404, None)

    def _record(self, body: bytes, now: float) -> None:
        try:
            data = orjson.loads(body)
            sent, n = float(data["sent"]), int(data["n"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            self.bad += 1
            return
        self.latencies_ms.append((now - sent) * 1000)
        self.seen.add(n)
        if self.first is None:
            self.first = now
        self.last = now


async def _body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _answer(send: Send, status: int, body: bytes | None) -> None:
    headers = _EMPTY if body is None else [*_JSON, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body or b""})


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m bench.receiver", description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    uvicorn.run(
        Receiver(),
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_level="warning",
        backlog=4096,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
