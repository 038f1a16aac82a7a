"""Real proxies for the Prefect block tests.

`CountingProxy` stands in front of a server (the Prefect API) and counts the requests
that pass, by path. `TlsInterceptor` is an HTTPS proxy for services Apprise only reaches
on their public hosts (hooks.slack.com, discord.com): it answers CONNECT, speaks TLS with
a certificate of a test CA for those hosts, and hands the decrypted HTTP to a local
receiver. Apprise's HTTP library uses it through HTTPS_PROXY and trusts the test CA
through REQUESTS_CA_BUNDLE.

    async with Receiver() as slack, TlsInterceptor(slack, certs) as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url); ...
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import subprocess
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

import httpx
import uvicorn

from events.embedded import free_port
from tests.actions.receivers import Message, Receiver, Scope, read_body

# The public hosts the interceptor poses as.
HOSTS = ("hooks.slack.com", "discord.com", "prod-00.westus.logic.azure.com")


@dataclass(frozen=True)
class Certificates:
    """A CA (`ca`, for REQUESTS_CA_BUNDLE) and a server certificate it signed for HOSTS."""

    ca: Path
    cert: Path
    key: Path


def make_certs(folder: Path) -> Certificates:
    """Made with the openssl command line: a CA, then a server certificate for HOSTS."""

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

    openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-keyout", "ca.key", "-out", "ca.pem", "-subj", "/CN=tripwire test CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key",
        "-out", "server.csr", "-subj", f"/CN={HOSTS[0]}",
    )  # fmt: skip
    names = ",".join(f"DNS:{host}" for host in HOSTS)
    (folder / "server.ext").write_text(
        f"subjectAltName={names}\nbasicConstraints=CA:FALSE\n"
        "keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
    )
    openssl(
        "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-out", "server.pem", "-extfile", "server.ext",
    )  # fmt: skip
    return Certificates(folder / "ca.pem", folder / "server.pem", folder / "server.key")


class _Server:
    """A raw asyncio TCP server on a free local port."""

    port: int
    _server: asyncio.Server | None = None
    _open: set[asyncio.StreamWriter]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._open.add(writer)
        try:
            await self.handle(reader, writer)
        finally:
            self._open.discard(writer)

    async def __aenter__(self) -> Self:
        self.port = free_port()
        self._open = set()
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._open):  # connections a client keeps open
                writer.close()
            await self._server.wait_closed()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, ssl.SSLError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    with contextlib.suppress(ConnectionError, ssl.SSLError, RuntimeError):
        writer.close()


class TlsInterceptor(_Server):
    """An HTTPS proxy that decrypts with the test CA's certificate and forwards the plain
    HTTP to `receiver`; `tunnels` lists the host:port of each CONNECT."""

    def __init__(self, receiver: Receiver, certs: Certificates) -> None:
        self.receiver = receiver
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(certs.cert, certs.key)
        self.tunnels: list[str] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        method, target, _ = head.split(b"\r\n", 1)[0].decode().split(" ", 2)
        if method != "CONNECT":
            writer.write(b"HTTP/1.1 405 Method Not Allowed\r\ncontent-length: 0\r\n\r\n")
            writer.close()
            return
        self.tunnels.append(target)
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
        await writer.start_tls(self.context)
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.receiver.port)
        await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))


class CountingProxy:
    """A reverse proxy in front of `upstream` (an http://host:port/api URL): `url` is its
    own API root; `requests` counts what passed by method and path."""

    def __init__(self, upstream: str) -> None:
        self.upstream = httpx.URL(upstream)
        self.requests: Counter[str] = Counter()
        self._client = httpx.AsyncClient(timeout=10)
        self.port = free_port()
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.upstream.path}"

    async def __call__(
        self,
        scope: Scope,
        receive: Callable[[], Awaitable[Message]],
        send: Callable[[Message], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        path = scope["path"]
        self.requests[f"{scope['method']} {path}"] += 1
        url = self.upstream.copy_with(path=path, query=scope["query_string"])
        headers = [(k, v) for k, v in scope["headers"] if k.lower() != b"host"]
        answer = await self._client.request(scope["method"], url, headers=headers, content=body)
        kept = [
            (k.encode(), v.encode())
            for k, v in answer.headers.items()
            if k.lower() not in ("content-length", "transfer-encoding", "content-encoding")
        ]
        await send({"type": "http.response.start", "status": answer.status_code, "headers": kept})
        await send({"type": "http.response.body", "body": answer.content})

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
        )
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve())
        async with asyncio.timeout(5):
            while not self._server.started:
                if self._task.done():
                    await self._task
                await asyncio.sleep(0.01)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task
        await self._client.aclose()
