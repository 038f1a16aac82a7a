"""With TRIPWIRE_API_KEY or TRIPWIRE_API_AUTH_STRING set, every route the app serves refuses
a request without the right credentials; only the documented open ones answer.

Routes come from the app itself, not from a list kept here, so a route added later is
covered (or must be added to OPEN on purpose, with the README saying so).
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
from collections.abc import Iterable, Iterator
from typing import Any

import httpx
import pytest
import websockets
from fastapi import FastAPI
from starlette.routing import BaseRoute, WebSocketRoute

from tests.support import Running, StartEngine

# README, "Auth": health and metrics are always open (probes and scrapers carry no key);
# a webhook's signature is its auth (an unsigned one asks for the key itself, see
# tests/tripwire/test_webhooks.py).
OPEN = {"/api/health", "/metrics", "/hooks/{slug}"}
# The dashboard signs people in with a form: its sign-in and sign-out, and the redirects
# to it, are open; every other page sends a visitor without credentials to sign in.
DASHBOARD_OPEN = {"/", "/ui", "/ui/login", "/ui/logout"}
KEY = "k3y-for-tests"
AUTH_STRING = "admin:pw-for-tests"


def _routes(routes: Iterable[Any]) -> Iterator[tuple[str, BaseRoute]]:
    """(path, route) of every route, through included routers (FastAPI keeps those as
    one entry whose routes it resolves lazily)."""
    for route in routes:
        if hasattr(route, "effective_route_contexts"):
            for context in route.effective_route_contexts():
                path = context.path or context.original_route.path
                yield re.sub(r"\{(\w+):\w+\}", r"{\1}", path), context.original_route
        else:
            yield route.path, route


def served(running: Running) -> tuple[list[tuple[str, str]], list[str]]:
    """The HTTP (method, path) pairs and the websocket paths the engine's app serves."""
    app: FastAPI = running.server.config.app  # type: ignore[assignment]  # create_app's
    http: list[tuple[str, str]] = []
    sockets: list[str] = []
    for path, route in _routes(app.routes):
        if isinstance(route, WebSocketRoute) or type(route).__name__ == "APIWebSocketRoute":
            sockets.append(path)
            continue
        http += [(method, path) for method in sorted(getattr(route, "methods", None) or ())]
    return http, sockets


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x", path)


def dashboard(path: str) -> bool:
    return path == "/" or path.startswith("/ui")


async def _refused(http: httpx.AsyncClient, method: str, url: str, **options: Any) -> bool:
    response = await http.request(method, url, **options)
    if dashboard(url):
        signing_in = response.headers.get("location", "").startswith("/ui/login?next=")
        return (response.status_code == 303 and signing_in) or response.status_code == 401
    return response.status_code == 401 and "www-authenticate" in response.headers


@pytest.mark.parametrize(
    ("settings", "good", "wrong"),
    [
        pytest.param(
            {"api_key": KEY}, f"Bearer {KEY}", ["Bearer nope", f"Basic {KEY}", KEY], id="key"
        ),
        pytest.param(
            {"api_auth_string": AUTH_STRING},
            "Basic " + base64.b64encode(AUTH_STRING.encode()).decode(),
            [
                "Basic " + base64.b64encode(b"admin:nope").decode(),
                f"Bearer {AUTH_STRING}",
                "Basic !!",
            ],
            id="auth-string",
        ),
    ],
)
async def test_every_http_route_but_the_open_ones_needs_the_credentials(
    start_engine: StartEngine, settings: dict[str, str], good: str, wrong: list[str]
) -> None:
    running = await start_engine(**settings)
    routes, _ = served(running)
    paths = {path for _, path in routes}
    assert paths >= OPEN
    assert {"/api/events", "/api/automations/{ref}", "/docs", "/openapi.json"} <= paths
    guarded = [(m, p) for m, p in routes if p not in OPEN | DASHBOARD_OPEN]
    assert len(guarded) >= 30
    assert {"/ui/", "/ui/events/{event_id}", "/ui/actions/{action_id}/retry"} <= paths
    let_through = []
    async with running.client() as http:
        for method, path in guarded:
            url = concrete(path)
            if not await _refused(http, method, url):
                let_through.append(f"{method} {path} without credentials")
            for header in wrong:
                if not await _refused(http, method, url, headers={"Authorization": header}):
                    let_through.append(f"{method} {path} with {header!r}")
            # Read the head only: the dashboard's live feed streams until it is closed.
            async with http.stream(method, url, headers={"Authorization": good}) as answered:
                assert answered.status_code != 401, (method, path)
                assert "/ui/login" not in answered.headers.get("location", ""), (method, path)
        # A path no route serves says nothing about what exists without credentials.
        assert await _refused(http, "GET", "/api/no-such-route")
        for method, path in routes:
            opens = path in OPEN and path != "/hooks/{slug}"
            if opens or (path == "/ui/login" and method == "GET"):
                assert (await http.request(method, concrete(path))).status_code == 200, path
    assert not let_through


async def _closed_without_events(running: Running, path: str, **connect: Any) -> bool:
    """The socket is refused at the upgrade, or closed with 1008 before any exchange."""
    first = connect.pop("first", None)
    try:
        async with websockets.connect(running.ws_url + path, **connect) as ws:
            if first is not None:
                await ws.send(json.dumps(first))
            await asyncio.wait_for(ws.recv(), 5)
    except websockets.InvalidStatus as refused:
        return refused.response.status_code in (401, 403)
    except websockets.ConnectionClosed as closed:
        return closed.rcvd is not None and closed.rcvd.code == 1008
    return False


@pytest.mark.parametrize("settings", [{"api_key": KEY}, {"api_auth_string": AUTH_STRING}])
async def test_every_websocket_refuses_without_the_credentials(
    start_engine: StartEngine, settings: dict[str, str]
) -> None:
    running = await start_engine(**settings)
    _, sockets = served(running)
    assert sorted(sockets) == ["/api/events/in", "/api/events/out"]
    secret = next(iter(settings.values()))
    prefect = {"subprotocols": [websockets.Subprotocol("prefect")]}
    attempts: dict[str, dict[str, Any]] = {
        "no credentials": {},
        "a wrong header": {"additional_headers": {"Authorization": "Bearer nope"}},
        "the secret without a scheme": {"additional_headers": {"Authorization": secret}},
        "a wrong token": {**prefect, "first": {"type": "auth", "token": "nope"}},
        "an empty token": {**prefect, "first": {"type": "auth", "token": ""}},
        "no token": {**prefect, "first": {"type": "auth"}},
        "an event instead of auth": {
            **prefect,
            "first": {"event": "e", "resource": {"prefect.resource.id": "r"}},
        },
        "a filter instead of auth": {**prefect, "first": {"type": "filter", "filter": {}}},
    }
    let_through = [
        f"{path} with {name}"
        for path in sockets
        for name, connect in attempts.items()
        if not await _closed_without_events(running, path, **dict(connect))
    ]
    assert not let_through
    for path in sockets:  # and the right token is taken on both
        async with websockets.connect(
            running.ws_url + path, subprotocols=[websockets.Subprotocol("prefect")]
        ) as ws:
            await ws.send(json.dumps({"type": "auth", "token": secret}))
            assert json.loads(await asyncio.wait_for(ws.recv(), 5)) == {"type": "auth_success"}
