"""The --api option and requests to a running engine; any failure ends the command with one
line saying what went wrong.

Requests go through the standard library (urllib) and tripwire-client's retry loop, as
tripwire-client's own do: a command that sends one request would spend longer setting up an
HTTP client library than on the request.
"""

from __future__ import annotations

import json
import os
import time
import urllib.request
from http import HTTPStatus
from typing import Any
from urllib.parse import urlencode, urlsplit

import typer

from tripwire.cli.output import fail
from tripwire_client.config import DEFAULT_API_URL, api_auth_headers, resolve_api_url
from tripwire_client.exchange import exchange
from tripwire_client.retry import Answer, Retry

TIMEOUT = 30.0  # seconds; applying many definitions can take a while
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


def request(
    api: str, method: str, path: str, *, body: Any = None, params: dict[str, Any] | None = None
) -> Answer:
    """Send one request to the engine at `api`, `body` as JSON; never raises."""
    url = api + path + (f"?{urlencode(params)}" if params else "")
    headers = api_auth_headers()
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    sent = urllib.request.Request(url, data=data, headers=headers, method=method)
    return exchange(sent, TIMEOUT)


def call(
    api: str,
    method: str,
    path: str,
    *,
    body: Any = None,
    params: dict[str, Any] | None = None,
    retries: int = 0,
) -> Any:
    """One request to the engine, its JSON answer; any failure ends the command with a
    one-line message. `retries`: how often to send it again while the engine is unreachable
    or busy, for requests that are safe to repeat."""
    retry = Retry(retries)
    while True:
        answer = request(api, method, path, body=body, params=params)
        delay = retry.delay_after(answer)
        if delay is None:
            break
        time.sleep(delay)
    if answer.status is None:
        fail(f"cannot reach tripwire at {api} ({answer.text}); is it running (`tripwire up`)?")
    if answer.status >= 400:
        fail(problem(answer.status, answer.text))
    return json.loads(answer.text) if answer.text else None


def problem(status: int, text: str) -> str:
    """The engine's error message (its `detail`), or the status and text."""
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    detail = data.get("detail") if isinstance(data, dict) else None
    if isinstance(detail, str) and detail:
        return detail
    return f"tripwire answered {status}: {text.strip()[:300] or _phrase(status)}"


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:  # a status Python does not name
        return "no text"
