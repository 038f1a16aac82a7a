"""Who is looking at the dashboard, and whether a form post came from it.

With API auth configured, a person signs in with the API key, the auth string or a
read-only key; the answer is a session cookie (HttpOnly, SameSite=Strict) holding what
the secret allows and when the session ends, signed with a key derived from the
configured secrets: changing a secret ends every session. A tool may send its
Authorization header instead of a cookie. Without auth, everyone may do everything, as
with the API.

Every change is a form POST carrying a CSRF token: an HMAC of the session (or, without
auth, of nothing) under a key no other site can read, so a page elsewhere cannot make a
signed-in browser pause an automation.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from fastapi import Request

from events import clock
from tripwire.auth import Access, ApiAuth

COOKIE = "tripwire_session"
SESSION_SECONDS = 12 * 3600


@dataclass(frozen=True)
class Visitor:
    """The person behind a request: what they may do, and their session (if any)."""

    access: Access
    session: str = ""

    @property
    def may_change(self) -> bool:
        return self.access is Access.write


class Sessions:
    """Issues and checks session cookies and CSRF tokens for one engine's credentials."""

    def __init__(self, auth: ApiAuth) -> None:
        self.auth = auth
        if auth.enabled:
            material = "\0".join(
                [auth.api_key or "", auth.auth_string or "", *auth.read_keys]
            ).encode()
            self._key = hashlib.sha256(b"tripwire dashboard sessions\0" + material).digest()
        else:
            self._key = secrets.token_bytes(32)  # tokens only need to outlive this process

    def _sign(self, text: str) -> str:
        return hmac.new(self._key, text.encode(), hashlib.sha256).hexdigest()

    def issue(self, access: Access) -> str:
        """A cookie value for a person who signed in with `access`."""
        body = f"{access.value}.{int(clock.now().timestamp()) + SESSION_SECONDS}"
        return f"{body}.{self._sign(body)}"

    def _session_access(self, value: str | None) -> Access:
        if not value or value.count(".") != 2:
            return Access.none
        level, expires, mac = value.split(".")
        if not hmac.compare_digest(mac, self._sign(f"{level}.{expires}")):
            return Access.none
        if not expires.isdigit() or int(expires) < clock.now().timestamp():
            return Access.none
        try:
            return Access(int(level))
        except ValueError:
            return Access.none

    def visitor(self, request: Request) -> Visitor:
        """Who sent `request`: by its Authorization header, else by its session cookie."""
        if not self.auth.enabled:
            return Visitor(Access.write)
        header = request.headers.get("authorization")
        if header:
            return Visitor(self.auth.header_access(header), session=header)
        cookie = request.cookies.get(COOKIE, "")
        return Visitor(self._session_access(cookie), session=cookie)

    def csrf_token(self, visitor: Visitor) -> str:
        """The token forms of this visitor's pages carry."""
        return self._sign("csrf." + visitor.session)

    def csrf_ok(self, visitor: Visitor, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(token or "", self.csrf_token(visitor))
