"""The HTTP client actions call out with: httpx's API on aiohttp's connection pool.

httpx's own pool (httpcore) scans every connection on each request; with dozens of
actions in flight that cost more CPU than the requests themselves. aiohttp's pool does
not, and its resolver is where the SSRF guard checks the addresses actually connected to.
"""

from __future__ import annotations

import logging

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

from actions.guard import PublicOnlyResolver


class OriginOnly(logging.Filter):
    """httpx logs each request's full URL at INFO, and an action's URL may hold a secret
    (a Slack webhook URL is one, `?token=` another): log its scheme, host and port only,
    as the SSRF guard names them."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(isinstance(a, httpx.URL) for a in record.args):
            record.args = tuple(
                f"{a.scheme}://{a.host}{f':{a.port}' if a.port else ''}/..."
                if isinstance(a, httpx.URL)
                else a
                for a in record.args
            )
        return True


_ORIGIN_ONLY = OriginOnly()


class _NoCookies(httpx.Cookies):
    def extract_cookies(self, response: httpx.Response) -> None:
        """Keep nothing an answer sets."""


class StatelessClient(httpx.AsyncClient):
    """Each call stands alone: cookies an answer sets are not sent with later calls, to
    that target or any other. (Keeping them also cost a tenth of a webhook call's CPU.)"""

    @property
    def cookies(self) -> httpx.Cookies:
        return _NoCookies()

    @cookies.setter
    def cookies(self, cookies: object) -> None:
        pass


def action_client(
    *, connections: int, timeout: float, allow_private: bool = False
) -> httpx.AsyncClient:
    """An httpx client for executors; redirects are never followed (one could lead an
    allowed URL to a private address)."""

    logging.getLogger("httpx").addFilter(_ORIGIN_ONLY)  # once: the same filter is kept once

    def session() -> aiohttp.ClientSession:  # made on first use, inside the event loop
        resolver = None if allow_private else PublicOnlyResolver()
        return aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=connections, resolver=resolver),
            cookie_jar=aiohttp.DummyCookieJar(),
        )

    return StatelessClient(
        transport=AiohttpTransport(client=session),
        follow_redirects=False,
        timeout=timeout,
    )
