"""The FastAPI app: events and automations routes, websockets, health, metrics, auth."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from itertools import chain

import orjson
from fastapi import APIRouter, FastAPI, Query, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.exc import DBAPIError

from actions import api as actions_api
from alerts import api as alerts_api
from events import api as events_api
from events import webhooks
from events import websocket as events_websocket
from events.errors import ApplyRefused
from events.metrics import CONSUMER_LAG, SLA_KEYS
from events.problems import ReadableErrors, refused
from events.reconcile import ChangeKind
from events.secrets import Secrets
from events.templating import Templates
from sla import api as sla_api
from triggers import api as triggers_api
from tripwire import __version__, definitions
from tripwire.auth import ApiAuth, AuthMiddleware
from tripwire.bus_description import bus_description
from tripwire.definitions import DefinitionsBody
from tripwire.engine import Engine, Role
from tripwire.health import health
from tripwire.server_timing import ServerTiming
from tripwire.ui import mount_dashboard

log = logging.getLogger("tripwire.api")

Reload = Callable[[], Awaitable[object]]
LAG_TIMEOUT = 2.0  # seconds; a scrape must not hang on a reconnecting bus


async def refresh_lag(engine: Engine) -> None:
    """Read the store and actions consumers' lag into the gauge; one that cannot be read
    (bus down, consumer not created yet) is left out rather than failing the scrape."""
    bus = engine.bus

    async def actions_lag() -> int | None:
        return await bus.pending(bus.names.actions_stream, bus.names.actions_consumer)

    consumers = {"store": bus.store_lag, "actions": actions_lag}
    for label, read in consumers.items():
        lag: int | None = None
        if bus.is_connected:
            try:
                async with asyncio.timeout(LAG_TIMEOUT):
                    lag = await read()
            except Exception as exc:  # not found, timed out, reconnecting: no sample
                log.debug("reading the %s consumer's lag failed: %r", label, exc)
        if lag is None:
            with contextlib.suppress(KeyError):
                CONSUMER_LAG.remove(label)
        else:
            CONSUMER_LAG.labels(label).set(lag)


# PostgreSQL refuses NUL in text (22021) and \u0000 in jsonb (22P05): the input is at fault.
UNSTORABLE_TEXT = frozenset({"22021", "22P05"})


async def unstorable_text(request: Request, exc: Exception) -> Response:
    """A 422 for text PostgreSQL cannot store, in a name, a filter or a definition."""
    if getattr(getattr(exc, "orig", None), "sqlstate", None) not in UNSTORABLE_TEXT:
        raise exc
    return events_api.problem(
        422, "a value holds a NUL character (\\u0000), which cannot be stored; remove it"
    )


async def refresh_sla_keys(engine: Engine) -> None:
    """Read each SLA's keys by state into the gauge; left as they were when the database
    does not answer."""
    try:
        states = await engine.slas.states()
    except Exception as exc:
        log.debug("reading SLA states failed: %r", exc)
        return
    SLA_KEYS.clear()  # an SLA deleted since the last scrape disappears
    for name, keys, missed in states:
        SLA_KEYS.labels(name, "ok").set(keys - missed)
        SLA_KEYS.labels(name, "missed").set(missed)


def workers_told(engine: Engine) -> Reload:
    """What every change (API, definitions, dashboard) calls once it is committed: the
    workers in this process reload at once; workers elsewhere poll the revision. A reload
    that fails is logged, not answered: the change stands and the next poll picks it up."""

    async def reload() -> None:
        try:
            await engine.pipeline.reload()
        except Exception:
            log.exception("reloading definitions after a change failed")

    return reload


def definitions_router(engine: Engine, reload: Reload | None) -> APIRouter:
    """`POST /api/definitions/apply`: what `tripwire apply` sends, every kind at once."""
    router = APIRouter(tags=["definitions"], route_class=ReadableErrors)

    @router.post(
        "/api/definitions/apply",
        summary="Create, update (and prune) connections, webhooks, SLAs, silences, "
        "inhibition rules and automations",
    )
    async def apply_definitions(
        body: DefinitionsBody,
        prune: bool = Query(
            False, description="Delete stored definitions not in the body, of each kind it holds."
        ),
        dry_run: bool = Query(False, description="Report what would change; change nothing."),
    ) -> Response:
        """`{"automations": [...], "slas": [...], ...}` applied in one transaction: all of
        it or nothing. A kind left out (or empty) is left alone, with `prune` too. The
        answer has one list per kind, of the changes that each `/api/{kind}/apply`
        answers with."""
        wanted = {name: getattr(body, name) for name in DefinitionsBody.model_fields}
        try:
            changes = await definitions.apply(engine.db, wanted, prune=prune, dry_run=dry_run)
        except ApplyRefused as exc:
            return refused(exc)
        changed = any(c.kind is not ChangeKind.unchanged for c in chain(*changes.values()))
        if reload is not None and changed and not dry_run:
            await reload()
        muting = chain(changes["silences"], changes["inhibit"])
        if not dry_run and any(c.kind is not ChangeKind.unchanged for c in muting):
            await engine.silences_changed()
        return events_api.json_response(
            {name: [c.as_json() for c in found] for name, found in changes.items()}
        )

    return router


def create_app(engine: Engine, *, manage_engine: bool = True) -> FastAPI:
    """The app for one engine; with `manage_engine` the app's lifespan starts and stops it."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if manage_engine:
            await engine.start()
        try:
            yield
        finally:
            if manage_engine:
                await engine.stop()

    app = FastAPI(
        title="tripwire",
        version=__version__,
        description="Automations engine for data platforms: "
        "events in, triggers, SLAs, actions out.",
        lifespan=lifespan,
    )
    auth = ApiAuth(engine.settings)
    app.add_middleware(AuthMiddleware, auth=auth)
    app.add_middleware(ServerTiming)
    app.add_exception_handler(DBAPIError, unstorable_text)

    @app.get("/api/health", tags=["health"], summary="Bus, database and consumer lag")
    async def get_health() -> Response:
        ok, report = await health(engine)
        return Response(orjson.dumps(report), 200 if ok else 503, media_type="application/json")

    @app.get("/metrics", tags=["health"], summary="Prometheus metrics")
    async def get_metrics() -> Response:
        await refresh_lag(engine)
        await refresh_sla_keys(engine)
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    if Role.api not in engine.roles:
        return app  # other roles serve their health and metrics only

    @app.get("/asyncapi.json", tags=["health"], summary="The bus's subjects and messages")
    async def get_asyncapi() -> Response:
        """An AsyncAPI 3 document of the NATS subjects the engine publishes on, beside
        the OpenAPI document of the HTTP API."""
        document = bus_description(engine.bus.names, engine.nats_url)
        return Response(orjson.dumps(document), media_type="application/json")

    app.include_router(events_api.build_router(engine.bus, engine.store))
    app.include_router(
        events_websocket.build_router(
            engine.bus,
            engine.store,
            auth.token_ok,
            auth.header_ok,
            reader_token_ok=auth.token_reads,
            reader_header_ok=auth.header_reads,
        )
    )
    reload = workers_told(engine) if engine.roles & {Role.worker, Role.sla} else None
    app.include_router(triggers_api.build_router(engine.automations, engine.db, reload))
    app.include_router(sla_api.build_router(engine.slas, reload))
    app.include_router(alerts_api.build_router(engine.alerts, engine.pipeline.deliver))
    app.include_router(
        alerts_api.build_silences_router(
            engine.silences, engine.pipeline.deliver, engine.silences_changed
        )
    )
    app.include_router(definitions_router(engine, reload))
    app.include_router(actions_api.build_router(engine.acting.ledger, engine.acting.resubmit))
    app.include_router(actions_api.build_connections_router(engine.acting.connections))
    # Webhook secrets render here, in the api role, from the same file and environment.
    templates = Templates(Secrets(file=engine.settings.secrets_file))
    app.include_router(
        webhooks.build_router(engine.bus, engine.webhooks, templates, auth.header_ok)
    )
    mount_dashboard(app, engine, auth, reload, engine.pipeline.deliver)
    return app
