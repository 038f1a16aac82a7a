"""Optional API auth: Bearer TRIPWIRE_API_KEY or Basic TRIPWIRE_API_AUTH_STRING may do
anything; Bearer keys of TRIPWIRE_API_READ_KEYS may read (GET) only."""

from __future__ import annotations

import base64
import hmac
from enum import IntEnum

from starlette.types import ASGIApp, Receive, Scope, Send

from tripwire.settings import Settings

OPEN_PATHS = frozenset({"/api/health", "/metrics", "/"})  # probes, scrapers, a redirect
# Webhook senders (GitHub, SaaS tools) cannot send our key: a webhook's signature is its
# auth, and an unsigned webhook asks for the key itself (events/webhooks/api.py). The
# dashboard signs people in with a form and a session cookie (tripwire/ui/access.py).
OPEN_PREFIXES = ("/hooks/", "/ui/", "/ui")
READING_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class Access(IntEnum):
    """What a credential allows; a larger value allows more."""

    none = 0
    read = 1
    write = 2


class ApiAuth:
    """Checks credentials against the configured key, auth string and read-only keys."""

    def __init__(self, settings: Settings) -> None:
        self.api_key = settings.api_key.get_secret_value() if settings.api_key else None
        self.auth_string = (
            settings.api_auth_string.get_secret_value() if settings.api_auth_string else None
        )
        self.read_keys = tuple(key.get_secret_value() for key in settings.api_read_keys)

    @property
    def enabled(self) -> bool:
        return bool(self.api_key or self.auth_string)

    def secret_access(self, secret: str | None) -> Access:
        """What a secret typed in or sent as a token allows: the API key or the auth string
        itself (write), or a read-only key (read)."""
        if not self.enabled:
            return Access.write
        if not secret:
            return Access.none
        if any(hmac.compare_digest(secret, s) for s in (self.api_key, self.auth_string) if s):
            return Access.write
        if any(hmac.compare_digest(secret, key) for key in self.read_keys):
            return Access.read
        return Access.none

    def token_ok(self, token: str | None) -> bool:
        """A websocket auth message's token: the API key or the auth string itself."""
        return self.secret_access(token) is Access.write

    def header_access(self, header: str | None) -> Access:
        """What an Authorization header allows."""
        if not self.enabled:
            return Access.write
        if not header or " " not in header:
            return Access.none
        scheme, _, value = header.partition(" ")
        scheme, value = scheme.lower(), value.strip()
        if scheme == "bearer":
            if self.api_key and hmac.compare_digest(value, self.api_key):
                return Access.write
            if any(hmac.compare_digest(value, key) for key in self.read_keys):
                return Access.read
            return Access.none
        if scheme == "basic" and self.auth_string:
            try:
                decoded = base64.b64decode(value, validate=True).decode()
            except ValueError:
                return Access.none
            return Access.write if hmac.compare_digest(decoded, self.auth_string) else Access.none
        return Access.none

    def header_ok(self, header: str | None) -> bool:
        """An Authorization header that may do anything."""
        return self.header_access(header) is Access.write

    def token_reads(self, token: str | None) -> bool:
        """A websocket token that may at least read (read-only keys too)."""
        return self.secret_access(token) >= Access.read

    def header_reads(self, header: str | None) -> bool:
        """An Authorization header that may at least read (read-only keys too)."""
        return self.header_access(header) >= Access.read


class AuthMiddleware:
    """Rejects HTTP requests without valid credentials (websockets check their own)."""

    def __init__(self, app: ASGIApp, auth: ApiAuth) -> None:
        self.app = app
        self.auth = auth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if (
            scope["type"] != "http"
            or not self.auth.enabled
            or path in OPEN_PATHS
            or path.startswith(OPEN_PREFIXES)
        ):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        header = headers.get(b"authorization", b"").decode("latin-1") or None
        access = self.auth.header_access(header)
        needed = Access.read if scope.get("method") in READING_METHODS else Access.write
        if access >= needed:
            await self.app(scope, receive, send)
            return
        if access is Access.read:
            await _answer(
                send,
                403,
                b'{"detail":"this key may read only (TRIPWIRE_API_READ_KEYS); changes need '
                b'TRIPWIRE_API_KEY (Bearer) or TRIPWIRE_API_AUTH_STRING (Basic)"}',
            )
            return
        schemes = ", ".join(
            s
            for s, on in (
                ("Bearer", self.auth.api_key or self.auth.read_keys),
                ('Basic realm="tripwire"', self.auth.auth_string),
            )
            if on
        )
        await _answer(
            send,
            401,
            b'{"detail":"authentication required: send Authorization with TRIPWIRE_API_KEY '
            b'(Bearer) or TRIPWIRE_API_AUTH_STRING (Basic)"}',
            [(b"www-authenticate", schemes.encode())],
        )


async def _answer(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), *(headers or [])],
        }
    )
    await send({"type": "http.response.body", "body": body})
