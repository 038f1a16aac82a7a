"""The --api option and requests to a running engine; any failure ends the command with one
line saying what went wrong."""

from __future__ import annotations

import os
import time
from typing import Any
from urllib.parse import urlsplit

import httpx
import typer

from tripwire.cli.output import fail
from tripwire_client.config import (
    DEFAULT_API_URL,
    RETRYABLE_STATUSES,
    api_auth_headers,
    resolve_api_url,
    retry_delay,
)

# The engine's settings put the API at DEFAULT_API_URL unless TRIPWIRE_HOST or _PORT say
# otherwise (a test keeps the two in step); read here so that no command imports them.
_DEFAULT = urlsplit(DEFAULT_API_URL)


def engine_url(api: str | None) -> str:
    """`--api`, TRIPWIRE_API_URL or TRIPWIRE_URL; else where this environment's settings put
    the API (TRIPWIRE_HOST, TRIPWIRE_PORT), so the CLI finds a `tripwire up` started beside it
    with another port."""
    if api or os.environ.get("TRIPWIRE_URL"):
        return resolve_api_url(api)
    host = os.environ.get("TRIPWIRE_HOST", "").strip()
    port = os.environ.get("TRIPWIRE_PORT", "").strip()
    local = str(_DEFAULT.hostname)
    host = {"": local, "0.0.0.0": local, "::": "::1"}.get(host, host)
    return f"http://{f'[{host}]' if ':' in host else host}:{port or _DEFAULT.port}"


ApiOption = typer.Option(
    None,
    "--api",
    envvar="TRIPWIRE_API_URL",
    callback=engine_url,
    help=f"Engine API (else TRIPWIRE_URL, else TRIPWIRE_HOST and TRIPWIRE_PORT; default "
    f"{DEFAULT_API_URL}).",
)


def _client(api: str) -> httpx.Client:
    return httpx.Client(base_url=api, headers=api_auth_headers(), timeout=30)


def call(api: str, method: str, path: str, *, retries: int = 0, **options: Any) -> Any:
    """One request to the engine, its JSON answer; any failure ends the command with a
    one-line message. `retries`: how often to try again while the engine is unreachable or
    busy (429, 502-504), for requests that are safe to repeat."""
    with _client(api) as http:
        for attempt in range(retries + 1):
            retry_after = None
            try:
                response = http.request(method, path, **options)
            except httpx.TransportError as exc:
                if attempt == retries:
                    fail(f"cannot reach tripwire at {api} ({exc}); is it running (`tripwire up`)?")
            else:
                if response.status_code not in RETRYABLE_STATUSES or attempt == retries:
                    break
                retry_after = response.headers.get("retry-after")
            time.sleep(retry_delay(attempt, retry_after))
    if response.status_code >= 400:
        fail(problem_text(response))
    return response.json() if response.content else None


def status_of(api: str, path: str) -> int:
    """The status of a GET, or 0 when the engine cannot be reached."""
    try:
        with _client(api) as http:
            return http.get(path).status_code
    except httpx.TransportError:
        return 0


def problem_text(response: httpx.Response) -> str:
    """The engine's error message (its `detail`), or the status and text."""
    try:
        data = response.json()
    except ValueError:
        data = None
    detail = data.get("detail") if isinstance(data, dict) else None
    if isinstance(detail, str) and detail:
        return detail
    text = response.text.strip()[:300] or response.reason_phrase
    return f"tripwire answered {response.status_code}: {text}"
