"""What the CLI's commands share: the --api option, one-line failures, calls to the engine."""

from __future__ import annotations

import os
import re
from typing import Any, NoReturn

import httpx
import typer

from events.client import DEFAULT_API_URL, api_auth_headers, resolve_api_url
from tripwire.settings import Settings

_URL_PASSWORD = re.compile(r"(://[^/@:]*:)[^/@]*@")


def redact_url(value: str) -> str:
    """URLs with any password masked (postgresql://app:********@db/tripwire); several
    comma-separated URLs alike."""
    return _URL_PASSWORD.sub(r"\1********@", value)


# What `apply --dry-run` says it would do, per kind of change.
VERBS = {"created": "create", "updated": "update", "deleted": "delete"}


def change_line(kind: str, what: str, dry_run: bool) -> str:
    """One line of `apply`: "created SLA x", or in a dry run "would create SLA x"."""
    verb = f"would {VERBS[kind]}" if dry_run and kind != "unchanged" else kind
    return f"{verb} {what}"


def engine_url(api: str | None) -> str:
    """`--api`, TRIPWIRE_API_URL or TRIPWIRE_URL; else where this environment's settings put
    the API (TRIPWIRE_HOST, TRIPWIRE_PORT), so the CLI finds a `tripwire up` started beside it
    with another port."""
    if api or os.environ.get("TRIPWIRE_URL"):
        return resolve_api_url(api)
    host = os.environ.get("TRIPWIRE_HOST", "").strip()
    port = os.environ.get("TRIPWIRE_PORT", "").strip()
    fields = Settings.model_fields
    local = str(fields["host"].default)
    host = {"": local, "0.0.0.0": local, "::": "::1"}.get(host, host)
    return f"http://{f'[{host}]' if ':' in host else host}:{port or fields['port'].default}"


ApiOption = typer.Option(
    None,
    "--api",
    envvar="TRIPWIRE_API_URL",
    callback=engine_url,
    help=f"Engine API (else TRIPWIRE_URL, else TRIPWIRE_HOST and TRIPWIRE_PORT; default "
    f"{DEFAULT_API_URL}).",
)


def fail(message: str, code: int = 1) -> NoReturn:
    """Print a clear error and exit (never a traceback)."""
    typer.secho(f"error: {message}", fg="red", err=True)
    raise typer.Exit(code)


def http_client(api: str | None) -> httpx.Client:
    return httpx.Client(
        base_url=resolve_api_url(api),
        headers=api_auth_headers(),
        timeout=30,
    )


def call(api: str | None, method: str, path: str, **options: Any) -> httpx.Response:
    """One request to the engine; any failure ends the command with a one-line message."""
    url = resolve_api_url(api)
    try:
        with http_client(api) as http:
            response = http.request(method, path, **options)
    except httpx.TransportError as exc:
        fail(f"cannot reach tripwire at {url} ({exc}); is it running (`tripwire up`)?")
    if response.status_code >= 400:
        fail(problem_text(response))
    return response


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
