"""Optional API auth: Bearer TRIPWIRE_API_KEY or Basic TRIPWIRE_API_AUTH_STRING."""

from __future__ import annotations

import base64
import hmac

from starlette.types import ASGIApp, Receive, Scope, Send

from tripwire.settings import Settings

OPEN_PATHS = frozenset({"/api/health", "/metrics"})  # probes and scrapers carry no key
# Webhook senders (GitHub, SaaS tools) cannot send our key: a webhook's signature is its
# auth, and an unsigned webhook asks for the key itself (events/webhooks/api.py).
OPEN_PREFIXES = ("/hooks/",)


class ApiAuth:
    """Checks credentials against the configured key and auth string."""

    def __init__(self, settings: Settings) -> None:
        self.api_key = settings.api_key.get_secret_value() if settings.api_key else None
        self.auth_string = (
            settings.api_auth_string.get_secret_value() if settings.api_auth_string else None
        )

    @property
    def enabled(self) -> bool:
        return bool(self.api_key or self.auth_string)

    def token_ok(self, token: str | None) -> bool:
        """A websocket auth message's token: the API key or the auth string itself."""
        if not self.enabled:
            return True
        if not token:
            return False
        return any(
            hmac.compare_digest(token, secret)
            for secret in (self.api_key, self.auth_string)
            if secret
        )

    def header_ok(self, header: str | None) -> bool:
        """An Authorization header."""
        if not self.enabled:
            return True
        if not header or " " not in header:
            return False
        scheme, _, value = header.partition(" ")
        scheme = scheme.lower()
        if scheme == "bearer" and self.api_key:
            return hmac.compare_digest(value.strip(), self.api_key)
        if scheme == "basic" and self.auth_string:
            try:
                decoded = base64.b64decode(value.strip(), validate=True).decode()
            except ValueError:
                return False
            return hmac.compare_digest(decoded, self.auth_string)
        return False


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
        if self.auth.header_ok(header):
            await self.app(scope, receive, send)
            return
        schemes = ", ".join(
            s
            for s, on in (
                ("Bearer", self.auth.api_key),
                ('Basic realm="tripwire"', self.auth.auth_string),
            )
            if on
        )
        body = (
            b'{"detail":"authentication required: send Authorization with TRIPWIRE_API_KEY '
            b'(Bearer) or TRIPWIRE_API_AUTH_STRING (Basic)"}'
        )
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"www-authenticate", schemes.encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
