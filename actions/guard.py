"""The SSRF guard: automations may not make the worker call private addresses.

An automation's URLs are written by whoever may edit automations, and the worker often
runs next to things they must not reach (cloud metadata at 169.254.169.254, databases,
the NATS monitor). So every address a URL's host resolves to must be public, unless
TRIPWIRE_ALLOW_PRIVATE_URLS is set (a lab, or tests with a local receiver).

The check resolves the name itself for a clear, permanent refusal; the actions' HTTP
client then connects only to addresses `PublicOnlyResolver` passed, so a DNS answer that
changes in between (rebinding) fails the connection too. Apprise makes its own
connections: for it, only the check holds.
Messages show scheme://host:port only, since paths and queries often carry tokens.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import socket
from functools import lru_cache
from typing import Any

import httpx
from aiohttp import ThreadedResolver
from aiohttp.abc import AbstractResolver, ResolveResult

from actions.errors import ActionRetry, UnsafeURL

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

ALLOW_HINT = (
    "automations may not call private addresses (set TRIPWIRE_ALLOW_PRIVATE_URLS=true to allow)"
)
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")

# Apprise plugins that talk to https://{host} of the URL although they have no plain-http
# scheme; the other cloud plugins go to their service's fixed public hosts.
APPRISE_HOSTED_CLOUD = frozenset({"infobip", "workflow", "workflows", "betterstack"})
# Modes in which a self-hostable plugin uses the public service, not the URL's host.
APPRISE_CLOUD_MODES = frozenset({"cloud", "official"})


def address_kind(ip: IPAddress) -> str | None:
    """Why `ip` may not be called ("a loopback address"), or None when it is public."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip in NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            kind = address_kind(embedded)
            return f"{kind} (IPv4 inside IPv6)" if kind else None
    if ip.is_unspecified:
        return "an unspecified address"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_private:
        return "a private address"
    if ip.is_reserved:
        return "a reserved address"
    if not ip.is_global:
        return "a non-public address"
    return None


def origin(url: httpx.URL) -> str:
    """`scheme://host[:port]`: what messages may show of a URL."""
    host = f"[{url.host}]" if ":" in url.host else url.host
    port = f":{url.port}" if url.port is not None else ""
    return f"{url.scheme}://{host}{port}"


@lru_cache(maxsize=1024)
def parse_url(url: str) -> httpx.URL:
    """`httpx.URL(url)`, remembered: an automation's URLs come from a few templates, and
    parsing one (host checks included) was a fifth of a webhook call's CPU. httpx.URL is
    immutable, so callers share the parsed URL. Raises httpx.InvalidURL like httpx.URL."""
    return httpx.URL(url)


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


class AddressGuard:
    """Refuses URLs that are not http(s) or whose host resolves to a non-public address."""

    def __init__(self, allow_private: bool) -> None:
        self.allow_private = allow_private

    async def check(self, url: str, field: str) -> None:
        """Raise UnsafeURL (permanent) or, when the name does not resolve, ActionRetry."""
        try:
            parsed = parse_url(url)
        except (httpx.InvalidURL, TypeError, ValueError):
            raise UnsafeURL(f"{field}: not a valid URL") from None
        if parsed.scheme not in ("http", "https"):
            scheme = f"{parsed.scheme}://" if parsed.scheme else "no scheme"
            raise UnsafeURL(f"{field}: {scheme} is not allowed; give an http:// or https:// URL")
        if not parsed.host:
            raise UnsafeURL(f"{field}: the URL has no host")
        if self.allow_private:
            return
        shown = origin(parsed)
        literal = _literal(parsed.host)
        addresses = [literal] if literal is not None else await self._resolve(parsed, shown, field)
        for ip in addresses:
            kind = address_kind(ip)
            if kind is not None:
                raise UnsafeURL(f"{field}: {shown} resolves to {ip}, {kind}; {ALLOW_HINT}")

    async def _resolve(self, url: httpx.URL, shown: str, field: str) -> list[IPAddress]:
        port = url.port or (443 if url.scheme == "https" else 80)
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                url.raw_host.decode("ascii"), port, type=socket.SOCK_STREAM
            )
        except (socket.gaierror, UnicodeError) as exc:
            # A resolver hiccup is common and passes; a name that never resolves
            # runs out of retries with this message.
            raise ActionRetry(
                f"{field}: the host of {shown} does not resolve ({exc}); "
                "will retry in case DNS is flaky"
            ) from None
        # The scope suffix (fe80::1%eth0) is not part of the address.
        return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]


def apprise_target(plugin: Any) -> str | None:
    """The http(s) form of the host an Apprise plugin instance will connect to, to guard.

    Self-hosted services (json://, xml://, form://, gotify://, ntfy://host/..., mailto's SMTP
    server and every plugin with a plain-text scheme that takes a host) are checked;
    cloud services (slack://, discord://, msteams://, ntfy://topic ...) go to their own
    public hosts and give None.
    """
    cls = type(plugin)
    if not _self_hosted(cls) or getattr(plugin, "mode", None) in APPRISE_CLOUD_MODES:
        return None
    # mailto://user@gmail.com sends through smtp.gmail.com or the smtp= server.
    host = getattr(plugin, "smtp_host", None) or getattr(plugin, "host", None)
    if not host or not isinstance(host, str):
        return None  # desktop and cloud-mode plugins have no host
    port = getattr(plugin, "port", None)
    scheme = "https" if getattr(plugin, "secure", False) else "http"
    shown_host = f"[{host}]" if ":" in host else host
    return (
        f"{scheme}://{shown_host}:{port}" if isinstance(port, int) else f"{scheme}://{shown_host}"
    )


def _self_hosted(cls: type) -> bool:
    templates = getattr(cls, "templates", ())
    if not any("{host}" in template for template in templates):
        return False
    # A plain (non-TLS) scheme only exists for services people run themselves.
    if getattr(cls, "protocol", None):
        return True
    secure = getattr(cls, "secure_protocol", None) or ()
    schemes = {secure} if isinstance(secure, str) else set(secure)
    return bool(schemes & APPRISE_HOSTED_CLOUD)


class PublicOnlyResolver(AbstractResolver):
    """The HTTP client's resolver when private addresses are refused: it hands out only
    public addresses, so the address connected to is one that was checked (a DNS answer
    that changes after `AddressGuard.check`, i.e. rebinding, fails the connection)."""

    def __init__(self) -> None:
        self._resolver = ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._resolver.resolve(host, port, family)
        for result in found:
            kind = address_kind(ipaddress.ip_address(result["host"]))
            if kind is not None:
                reason = f"{host} resolves to {result['host']}, {kind}; {ALLOW_HINT}"
                raise OSError(errno.EACCES, reason)  # aiohttp shows strerror
        return found

    async def close(self) -> None:
        await self._resolver.close()
