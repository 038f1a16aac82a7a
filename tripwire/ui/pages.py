"""The dashboard's pages (GET): overview, events, automations, SLAs, alerts, actions,
webhooks."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from actions.ledger import Status
from alerts.model import AlertState
from events import clock
from events.filters import EventFilter
from events.live import stored_up_to
from events.timestamps import as_utc
from sla.api import window_json
from sla.errors import SLANotFound
from sla.store import StoredSLA
from triggers.repository import AutomationNotFound
from tripwire.engine import Engine
from tripwire.health import health
from tripwire.ui import readings
from tripwire.ui.access import Visitor
from tripwire.ui.alert_list import OPEN_FIRST, Cursor, alerts_page
from tripwire.ui.alert_view import show_alert
from tripwire.ui.automation_view import show_automation
from tripwire.ui.charts import Buckets, sparkline, stacked_bars, strip
from tripwire.ui.context import Dashboard
from tripwire.ui.event_query import EventQuery, QueryError
from tripwire.ui.rendering import definition_yaml, query
from tripwire.ui.words import trigger_words

log = logging.getLogger("tripwire.ui")

DAY = timedelta(hours=24)
EVENT_STEP = timedelta(minutes=15)
EVENTS_PER_PAGE = 50
ACTIONS_PER_PAGE = 50
ALERTS_PER_PAGE = 50
AUTOMATIONS_PER_PAGE = 100
BOARD_KEYS = 5  # keys per SLA on the board, the ones that need a look first
SLA_PAGE_KEYS = 500
HISTORY_DAYS = 30
STATUSES = [s.value for s in Status]
ALERT_STATES = [s.value for s in OPEN_FIRST]


def _after(text: str) -> tuple[str, str] | None:
    """A keyset cursor "occurred|id" from a "next page" link."""
    occurred, sep, key = text.partition("|")
    return (occurred, key) if sep and occurred and key else None


def _histogram_step(since: datetime, until: datetime) -> timedelta:
    """About 60 bars whatever the range, in whole minutes."""
    minutes = max(int((until - since).total_seconds() / 60 / 60), 1)
    return timedelta(minutes=minutes)


def build_pages(board: Dashboard) -> APIRouter:
    router = APIRouter(prefix="/ui", include_in_schema=False)
    engine = board.engine

    @router.get("/")
    async def overview(request: Request, visitor: Visitor = Depends(board.looking)) -> Response:
        now = clock.now()
        ok, report = await health(engine)
        since = now - DAY
        rate = await readings.event_rate(engine.store, since, now, EVENT_STEP, EventFilter())
        fired = await readings.firings(engine.ledger_db, since, now)
        actions = await readings.action_counts(engine.ledger_db, since)
        stored = await engine.slas.all()
        warned = [s.id for s in stored if s.sla.warn_before is not None]
        counts = await readings.sla_counts(engine.db, warned)
        rejected = await readings.rejected_since(engine.db, since)
        alerts_firing = await readings.alerts_firing(engine.db)
        quarters = Buckets(
            rate.buckets.starts,
            rate.buckets.series,
            unit=f"events in {int(EVENT_STEP.total_seconds() // 60)} min",
        )
        return board.pages.render(
            request,
            visitor,
            "overview.html",
            ok=ok,
            health=report,
            events_chart=stacked_bars(
                quarters, label="events over the last 24 hours", link="/ui/events"
            ),
            series=list(rate.buckets.series),
            events_peak=rate.buckets.peak,
            firings_peak=fired.overall.peak,
            events_total=rate.total,
            events_per_minute=rate.total / (DAY.total_seconds() / 60),
            firings_chart=stacked_bars(fired.overall, label="firings per hour", height=80),
            firings_total=sum(fired.overall.series["firings"]),
            missed=sum(c.missed for c in counts.values()),
            at_risk=sum(c.at_risk for c in counts.values()),
            failed=actions.get(Status.failed.value, 0),
            retrying=actions.get(Status.retrying.value, 0),
            rejected=rejected,
            alerts_firing=alerts_firing,
        )

    @router.get("/events")
    async def events_page(request: Request, visitor: Visitor = Depends(board.looking)) -> Response:
        asked = EventQuery.from_params(request.query_params)
        error = None
        stored = None
        found: list[Any] = []
        next_after = None
        chart = None
        series: list[str] = []
        peak = 0
        window = None
        now = clock.now()
        try:
            flt = asked.to_filter(now)
        except QueryError as exc:
            error = exc
        else:
            after = _after(request.query_params.get("after", ""))
            # Before reading: the live feed continues from here, missing nothing between.
            stored = await _stored_up_to(engine)
            page = await engine.store.read(flt, EVENTS_PER_PAGE, after, count=False)
            found = page.events
            if page.next_token and found:
                next_after = f"{found[-1].occurred.isoformat()}|{found[-1].id}"
            since, until = window = asked.window(now)
            rate = await readings.event_rate(
                engine.store, since, until, _histogram_step(since, until), flt
            )
            series = list(rate.buckets.series)
            peak = rate.buckets.peak
            chart = stacked_bars(
                rate.buckets,
                label="matching events over the range",
                height=90,
                link="/ui/events?" + query(asked.params(), since=None, until=None),
            )
        return board.pages.render(
            request,
            visitor,
            "events.html",
            status=400 if error else 200,
            asked=asked,
            params=asked.params(),
            error=error,
            events=found,
            next_after=next_after,
            chart=chart,
            series=series,
            peak=peak,
            window=window,
            live=not request.query_params.get("after") and not asked.until,
            live_query=query(asked.params(), stored=stored),
        )

    @router.get("/events/{event_id}")
    async def event_page(
        request: Request, event_id: str, visitor: Visitor = Depends(board.looking)
    ) -> Response:
        event = await engine.store.get(event_id)
        if event is None:
            return board.not_found(
                request,
                visitor,
                f"No stored event has the id {event_id}. It may not be stored yet, or "
                "retention swept it.",
            )
        decisions = await readings.event_decisions(engine.db, event_id)
        return board.pages.render(
            request, visitor, "event.html", event=event, payload=event.payload, decisions=decisions
        )

    @router.get("/automations")
    async def automations_page(
        request: Request, visitor: Visitor = Depends(board.looking)
    ) -> Response:
        now = clock.now()
        search = request.query_params.get("q", "").strip()
        after = request.query_params.get("after", "")
        stored, total = await engine.automations.page(
            after=after, limit=AUTOMATIONS_PER_PAGE + 1, search=search
        )
        next_after = None
        if len(stored) > AUTOMATIONS_PER_PAGE:
            stored = stored[:AUTOMATIONS_PER_PAGE]
            next_after = stored[-1].automation.name
        ids = [str(item.id) for item in stored]
        fired = await readings.firings(engine.ledger_db, now - DAY, now, ids)
        last = await readings.last_fired(engine.ledger_db, ids)
        rows = []
        for item in stored:
            key = str(item.id)
            hourly = fired.per_automation.get(key, [0] * len(fired.starts))
            rows.append(
                {
                    "name": item.automation.name,
                    "description": item.automation.description,
                    "enabled": item.automation.enabled,
                    "trigger": trigger_words(item.automation.trigger),
                    "last_fired": last.get(key),
                    "fired_24h": sum(hourly),
                    "spark": sparkline(hourly, label="firings per hour, last 24 hours"),
                    "failed": fired.failed.get(key, 0),
                }
            )
        return board.pages.render(
            request,
            visitor,
            "automations.html",
            automations=rows,
            total=total,
            search=search,
            first=not after,
            next_after=next_after,
        )

    @router.get("/automations/{name:path}")
    async def automation_page(
        request: Request, name: str, visitor: Visitor = Depends(board.looking)
    ) -> Response:
        try:
            stored = await engine.automations.get(name)
        except AutomationNotFound as exc:
            return board.not_found(request, visitor, str(exc))
        return await show_automation(board, request, visitor, stored)

    @router.get("/slas")
    async def slas_page(request: Request, visitor: Visitor = Depends(board.looking)) -> Response:
        slas = await _sla_sections(engine, await engine.slas.all(), BOARD_KEYS)
        return board.pages.render(request, visitor, "slas.html", slas=slas, days=HISTORY_DAYS)

    @router.get("/slas/{name}")
    async def sla_page(
        request: Request, name: str, visitor: Visitor = Depends(board.looking)
    ) -> Response:
        try:
            item = await engine.slas.get(name)
        except SLANotFound as exc:
            return board.not_found(request, visitor, str(exc))
        (section,) = await _sla_sections(engine, [item], SLA_PAGE_KEYS)
        return board.pages.render(
            request,
            visitor,
            "sla.html",
            item=item,
            counts=section["counts"],
            keys=section["keys"],
            definition=definition_yaml(item.sla),
            days=HISTORY_DAYS,
        )

    @router.get("/alerts")
    async def alerts_list(request: Request, visitor: Visitor = Depends(board.looking)) -> Response:
        chosen = request.query_params.get("state", "").strip()
        name = request.query_params.get("name", "").strip()
        shown: dict[str, Any] = {"chosen": chosen, "name": name, "states": ALERT_STATES}
        if chosen and chosen not in ALERT_STATES:
            return board.pages.render(
                request,
                visitor,
                "alerts.html",
                status=400,
                error=f"state: {chosen!r} is not one of {', '.join(ALERT_STATES)}",
                alerts=[],
                muted={},
                next_before=None,
                **shown,
            )
        found, after = await alerts_page(
            engine.alerts,
            (AlertState(chosen),) if chosen else OPEN_FIRST,
            name=name or None,
            cursor=Cursor.parse(request.query_params.get("before", "")),
            limit=ALERTS_PER_PAGE,
        )
        muting = await engine.alerts.muting()
        return board.pages.render(
            request,
            visitor,
            "alerts.html",
            error=None,
            alerts=found,
            muted={a.id: muting.why(a) for a in found if a.open},
            next_before=after.text() if after else None,
            **shown,
        )

    @router.get("/alerts/{alert_id}")
    async def alert_page(
        request: Request, alert_id: str, visitor: Visitor = Depends(board.looking)
    ) -> Response:
        return await show_alert(board, request, visitor, alert_id)

    @router.get("/actions")
    async def actions_page(request: Request, visitor: Visitor = Depends(board.looking)) -> Response:
        status = request.query_params.get("status", "")
        automation = request.query_params.get("automation", "").strip()
        if status and status not in STATUSES:
            return board.pages.render(
                request,
                visitor,
                "actions.html",
                status=400,
                error=f"status: {status!r} is not one of {', '.join(STATUSES)}",
                entries=[],
                chosen="",
                automation=automation,
                statuses=STATUSES,
                next_before=None,
            )
        before = None
        cursor = _after(request.query_params.get("before", ""))
        if cursor is not None:
            try:
                before = (as_utc(datetime.fromisoformat(cursor[0])), cursor[1])
            except ValueError:
                before = None
        entries = await engine.acting.ledger.list(
            status=Status(status) if status else None,
            automation=automation or None,
            before=before,
            limit=ACTIONS_PER_PAGE + 1,
        )
        next_before = None
        if len(entries) > ACTIONS_PER_PAGE:
            entries = entries[:ACTIONS_PER_PAGE]
            last = entries[-1]
            next_before = f"{as_utc(last['created']).isoformat()}|{last['id']}"
        return board.pages.render(
            request,
            visitor,
            "actions.html",
            error=None,
            entries=entries,
            chosen=status,
            automation=automation,
            statuses=STATUSES,
            next_before=next_before,
        )

    @router.get("/webhooks")
    async def webhooks_page(
        request: Request, visitor: Visitor = Depends(board.looking)
    ) -> Response:
        stored = await engine.webhooks.all()
        slugs = [w.definition.slug for w in stored]
        last = await readings.last_deliveries(engine.db, slugs)
        hooks = []
        for item in stored:
            slug = item.definition.slug
            hooks.append(
                {
                    "slug": slug,
                    "description": item.definition.description,
                    "signed": item.definition.signature is not None,
                    "last_delivery": last.get(slug),
                    "rejected": await engine.webhooks.rejected(slug, limit=5),
                }
            )
        sources = [_with_lag(follower.report()) for follower in engine.followers]
        return board.pages.render(request, visitor, "webhooks.html", hooks=hooks, sources=sources)

    return router


async def _stored_up_to(engine: Engine) -> int | None:
    """Where the store is on the bus; None when the bus cannot say (the page still
    renders, and its live feed starts from what is stored when it connects)."""
    try:
        return await stored_up_to(engine.bus)
    except Exception as exc:
        log.debug("reading the store's position failed: %r", exc)
        return None


def _with_lag(report: dict[str, Any]) -> dict[str, Any]:
    """A follower's report with its lag: how long ago the newest event it forwarded
    occurred (None before the first)."""
    last = report.get("last_event")
    occurred = as_utc(datetime.fromisoformat(last["occurred"])) if last else None
    return {**report, "last_occurred": occurred}


async def _sla_sections(
    engine: Engine, stored: list[StoredSLA], keys_each: int
) -> list[dict[str, Any]]:
    """Per SLA: its counts of keys, and its first `keys_each` keys (missed, at risk, next
    due) with their strips of the last HISTORY_DAYS days; four queries in all."""
    since = _day_start(clock.now() - timedelta(days=HISTORY_DAYS - 1))
    ids = [item.id for item in stored]
    warned = [item.id for item in stored if item.sla.warn_before is not None]
    counts = await readings.sla_counts(engine.db, warned, ids)
    windows = await readings.sla_windows_first(engine.db, ids, keys_each)
    history = await readings.sla_history(engine.db, [item.sla for item in stored], since)
    return [
        {
            "stored": item,
            "counts": counts.get(item.id, readings.SLACounts()),
            "keys": _keys(item, windows.get(item.id, []), history, since),
        }
        for item in stored
    ]


def _day_start(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def _keys(
    item: Any,
    windows: list[Any],
    history: dict[tuple[str, tuple[str, ...]], readings.KeyHistory],
    since: datetime,
) -> list[dict[str, Any]]:
    keys = []
    days = readings.day_labels(since, HISTORY_DAYS)
    for window in windows:
        shown = window_json(window, item.sla)
        values = tuple(str(v) for v in shown["key"])
        shown["label"] = ", ".join(values) or item.sla.name
        shown["strip"] = strip(
            readings.day_cells(history.get((item.sla.name, values)), days, item.created),
            label=f"misses and recoveries of the last {HISTORY_DAYS} days",
        )
        keys.append(shown)
    return keys
