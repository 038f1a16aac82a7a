"""What the dashboard reads beyond the stores' own calls: counts over time, firings per
automation, SLA history, webhook deliveries, alerts firing. Every query is bounded by time
or a limit and served by an index (see the indexes named beside each)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Integer, cast, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from actions.ledger import Status
from actions.tables import action_ledger
from alerts.model import AlertState
from alerts.tables import alerts
from events.bulk import read_time
from events.conditions import matching
from events.filters import EventFilter
from events.store import EventStore
from events.tables import event_resources, events
from events.webhooks.rejections import REJECTED_EVENT
from events.webhooks.tables import webhook_rejections
from sla.model import SLA
from sla.tables import sla_windows
from triggers.tables import automations, decisions
from tripwire.ui.charts import Buckets

OTHER = "other"
TOP_PREFIXES = 5  # the chart's series: the busiest prefixes, the rest as "other"
SLA_EVENTS = ("tripwire.sla.missed", "tripwire.sla.recovered", "tripwire.sla.at-risk")
SLA_HISTORY_LIMIT = 5000


def prefix(name: str) -> str:
    """The family an event name belongs to: its first two dotted parts
    (`prefect.flow-run.Failed` → `prefect.flow-run`)."""
    return ".".join(name.split(".")[:2])


def _bucket(column: Any, dialect: str, start: datetime, step: timedelta) -> ColumnElement[Any]:
    """The index of `column`'s bucket, counted in `step`s from `start`."""
    seconds = int(step.total_seconds())
    origin = int(start.timestamp())
    if dialect == "postgresql":
        epoch = func.extract("epoch", column)
        return cast(func.floor((epoch - origin) / seconds), Integer)
    # SQLite keeps UTC text; strftime('%s') reads it as seconds since the epoch, and
    # integers divide to integers.
    return (cast(func.strftime("%s", column), Integer) - origin) // seconds


def _starts(since: datetime, until: datetime, step: timedelta) -> list[datetime]:
    count = max(int((until - since) / step), 1)
    return [since + step * i for i in range(count)]


def _slot(index: int, count: int) -> int | None:
    """The bar a bucket index falls in. Seconds and minutes are cut to whole ones in the
    database, so what happened in the range's last second (or minute) can come out one
    past the last bar: it belongs to the last."""
    if index < 0 or index > count:
        return None
    return min(index, count - 1)


@dataclass
class EventRate:
    """Events over a range, one series per name prefix."""

    buckets: Buckets
    total: int


def _counted_prefixes(flt: EventFilter) -> list[str] | None:
    """The name prefixes to read from the per-minute counts when `flt` asks for nothing
    else than a time range and name prefixes; None when the events must be read."""
    named = flt.event
    if named is not None and (named.exclude_prefix or named.name or named.exclude_name):
        return None
    if flt.resource or flt.any_resource or flt.related or flt.id:
        return None
    return list(named.prefix or []) if named else []


async def event_rate(
    store: EventStore, since: datetime, until: datetime, step: timedelta, flt: EventFilter
) -> EventRate:
    """Counts per bucket, one series per name prefix (the busiest few, the rest as
    "other"): from the per-minute counts when the filter allows it (time and name
    prefixes), else grouped from the matching events (ix_events_occurred_id)."""
    starts = _starts(since, until, step)
    per_prefix: dict[str, list[int]] = defaultdict(lambda: [0] * len(starts))
    prefixes = _counted_prefixes(flt)
    if prefixes is not None:
        for counted in await store.counts_over_time(since, until, step, prefixes):
            if (slot := _slot(counted.bucket, len(starts))) is not None:
                per_prefix[prefix(counted.event)][slot] += counted.count
    else:
        for index, name, count in await _grouped(store.engine, since, until, step, flt):
            if (slot := _slot(index, len(starts))) is not None:
                per_prefix[prefix(name)][slot] += count
    ranked = sorted(per_prefix, key=lambda p: -sum(per_prefix[p]))
    series = {name: per_prefix[name] for name in ranked[:TOP_PREFIXES]}
    if len(ranked) > TOP_PREFIXES:
        rest = [0] * len(starts)
        for name in ranked[TOP_PREFIXES:]:
            rest = [a + b for a, b in zip(rest, per_prefix[name], strict=True)]
        series[OTHER] = rest
    total = sum(sum(values) for values in per_prefix.values())
    return EventRate(Buckets(starts, series), total)


async def _grouped(
    db: AsyncEngine, since: datetime, until: datetime, step: timedelta, flt: EventFilter
) -> list[tuple[int, str, int]]:
    """(bucket, name, count) of the events matching `flt` in [since, until)."""
    bucket = _bucket(events.c.occurred, db.dialect.name, since, step).label("bucket")
    query = (
        select(bucket, events.c.event, func.count().label("n"))
        .where(events.c.occurred >= since, events.c.occurred < until, *matching(flt))
        .group_by(bucket, events.c.event)
    )
    async with db.connect() as conn:
        return [(int(r.bucket), r.event, int(r.n)) for r in (await conn.execute(query)).all()]


@dataclass
class Firings:
    """Firings (with actions) over a range, overall and per automation."""

    starts: list[datetime]
    per_automation: dict[str, list[int]] = field(default_factory=dict)
    failed: dict[str, int] = field(default_factory=dict)

    @property
    def overall(self) -> Buckets:
        totals = [0] * len(self.starts)
        for values in self.per_automation.values():
            totals = [a + b for a, b in zip(totals, values, strict=True)]
        return Buckets(self.starts, {"firings": totals}, unit="firings")


async def firings(
    ledger_db: AsyncEngine,
    since: datetime,
    until: datetime,
    automation_ids: Sequence[str] | None = None,
) -> Firings:
    """Firings per hour and automation (of these automations, when given), from the action
    ledger (ix_action_ledger_created): a firing is counted once whatever its number of
    actions. Failed actions are counted per automation too."""
    step = timedelta(hours=1)
    result = Firings(_starts(since, until, step))
    table = action_ledger
    bucket = _bucket(table.c.created, ledger_db.dialect.name, since, step).label("bucket")
    failed = func.sum(cast(table.c.status == Status.failed.value, Integer)).label("failed")
    query = (
        select(
            table.c.automation_id,
            bucket,
            func.count(func.distinct(table.c.firing_id)).label("n"),
            failed,
        )
        .where(table.c.created >= since, table.c.created < until)
        .group_by(table.c.automation_id, bucket)
    )
    if automation_ids is not None:
        query = query.where(table.c.automation_id.in_(list(automation_ids)))
    async with ledger_db.connect() as conn:
        rows = (await conn.execute(query)).all()
    for row in rows:
        values = result.per_automation.setdefault(row.automation_id, [0] * len(result.starts))
        if (slot := _slot(int(row.bucket), len(values))) is not None:
            values[slot] += int(row.n)
        result.failed[row.automation_id] = result.failed.get(row.automation_id, 0) + int(
            row.failed or 0
        )
    return result


async def last_fired(ledger_db: AsyncEngine, automation_ids: Sequence[str]) -> dict[str, datetime]:
    """When each of these automations last fired (ix_action_ledger_automation_id_created)."""
    table = action_ledger
    query = (
        select(table.c.automation_id, func.max(table.c.created).label("last"))
        .where(table.c.automation_id.in_(list(automation_ids)))
        .group_by(table.c.automation_id)
    )
    async with ledger_db.connect() as conn:
        rows = (await conn.execute(query)).all()
    return {row.automation_id: read_time(row.last) for row in rows if row.last is not None}


async def action_counts(ledger_db: AsyncEngine, since: datetime) -> dict[str, int]:
    """Actions by status created since `since` (ix_action_ledger_status_created)."""
    table = action_ledger
    query = (
        select(table.c.status, func.count().label("n"))
        .where(table.c.created >= since)
        .group_by(table.c.status)
    )
    async with ledger_db.connect() as conn:
        return {row.status: int(row.n) for row in (await conn.execute(query)).all()}


@dataclass(frozen=True)
class EventDecision:
    """What one automation made of one event."""

    automation: str
    outcome: str
    reason: str
    decided: datetime


async def event_decisions(db: AsyncEngine, event_id: str) -> list[EventDecision]:
    """Every decision recorded about one event (ix_decisions_event_id), oldest first."""
    query = (
        select(automations.c.name, decisions.c.outcome, decisions.c.reason, decisions.c.decided)
        .join(automations, automations.c.id == decisions.c.automation_id)
        .where(decisions.c.event_id == event_id)
        .order_by(decisions.c.id)
    )
    async with db.connect() as conn:
        rows = (await conn.execute(query)).all()
    return [EventDecision(r.name, r.outcome, r.reason, r.decided) for r in rows]


@dataclass
class KeyHistory:
    """One SLA key's misses and recoveries, per day."""

    days: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))


def _day(moment: datetime) -> str:
    return moment.date().isoformat()


async def sla_history(
    db: AsyncEngine, slas: Sequence[SLA], since: datetime
) -> dict[tuple[str, tuple[str, ...]], KeyHistory]:
    """`tripwire.sla.*` events of these SLAs since `since` (ix_events_resource_id_occurred),
    per SLA name and key (its for_each values, in order) and day: what happened, in order.
    At most SLA_HISTORY_LIMIT events are read, the newest first."""
    by_resource = {f"tripwire.sla.{sla.name}": sla for sla in slas}
    if not by_resource:
        return {}
    query = (
        select(events.c.resource_id, events.c.event, events.c.occurred, events.c.body)
        .where(
            events.c.resource_id.in_(list(by_resource)),
            events.c.occurred >= since,
            events.c.event.in_(SLA_EVENTS),
        )
        .order_by(events.c.occurred.desc())
        .limit(SLA_HISTORY_LIMIT)
    )
    async with db.connect() as conn:
        rows = (await conn.execute(query)).all()
    history: dict[tuple[str, tuple[str, ...]], KeyHistory] = defaultdict(KeyHistory)
    for row in reversed(rows):
        sla = by_resource[row.resource_id]
        labels = (orjson.loads(row.body).get("payload") or {}).get("key") or {}
        key = tuple(str(labels.get(label)) for label in sla.for_each)
        state = row.event.removeprefix("tripwire.sla.")
        history[(sla.name, key)].days[_day(row.occurred)].append(f"{state} at {row.occurred:%H:%M}")
    return history


def day_labels(since: datetime, days: int) -> list[str]:
    """ "2026-12-06" for each of `days` days from `since`, as `sla_history` keys them."""
    first = since.date()
    return [(first + timedelta(days=n)).isoformat() for n in range(days)]


def day_cells(
    history: KeyHistory | None, days: Sequence[str], created: datetime
) -> list[tuple[str, str]]:
    """(state, title) per day for a strip: missed when a miss happened that day, recovered
    when only a recovery did, ok otherwise; none before the SLA existed."""
    born = created.date().isoformat()
    cells = []
    for day in days:
        if day < born:
            cells.append(("none", f"{day}: before this SLA existed"))
            continue
        happened = history.days.get(day, []) if history else []
        if any(h.startswith("missed") for h in happened):
            state = "missed"
        elif any(h.startswith("at-risk") for h in happened):
            state = "at-risk"
        elif happened:
            state = "recovered"
        else:
            state = "ok"
        cells.append((state, f"{day}: {', '.join(happened) or 'no miss'}"))
    return cells


async def last_deliveries(db: AsyncEngine, slugs: Iterable[str]) -> dict[str, datetime]:
    """When each webhook's last event occurred: events about the webhook itself, or with it
    as a related resource (both by resource id and occurred); its refusals do not count."""
    found = {}
    async with db.connect() as conn:
        for slug in slugs:
            webhook = f"tripwire.webhook.{slug}"
            related = select(func.max(event_resources.c.occurred)).where(
                event_resources.c.resource_id == webhook
            )
            own = (
                select(events.c.occurred)
                .where(events.c.resource_id == webhook, events.c.event != REJECTED_EVENT)
                .order_by(events.c.occurred.desc())
                .limit(1)
            )
            seen = [read_time(t) for t in (await conn.scalar(related), await conn.scalar(own)) if t]
            if seen:
                found[slug] = max(seen)
    return found


async def rejected_since(db: AsyncEngine, since: datetime) -> int:
    """Webhook requests refused since `since`, of every slug."""
    table = webhook_rejections
    async with db.connect() as conn:
        value = await conn.scalar(
            select(func.count()).select_from(table).where(table.c.received >= since)
        )
    return int(value or 0)


async def alerts_firing(db: AsyncEngine) -> int:
    """Alerts firing now, of every automation and SLA (ix_alerts_state_last_fired)."""
    async with db.connect() as conn:
        value = await conn.scalar(
            select(func.count())
            .select_from(alerts)
            .where(alerts.c.state == AlertState.firing.value)
        )
    return int(value or 0)


@dataclass(frozen=True)
class SLACounts:
    """How many keys of one SLA are watched, missed and at risk now."""

    keys: int = 0
    missed: int = 0
    at_risk: int = 0


def _at_risk() -> ColumnElement[bool]:
    # The early warning went out (warn_at cleared) on an armed window neither met nor
    # missed: the same rule as the API's window state (sla/api.py).
    w = sla_windows.c
    return w.armed.is_(True) & w.warn_at.is_(None) & w.met.is_(None) & w.missed.is_(None)


async def sla_counts(
    db: AsyncEngine, warned: Iterable[str], sla_ids: Sequence[str] | None = None
) -> dict[str, SLACounts]:
    """Per SLA id (of `sla_ids`, else of all): keys, missed keys, and at-risk keys of the
    SLAs in `warned` (those with an early warning; the others are never at risk)."""
    w = sla_windows.c
    query = select(
        w.sla_id,
        func.count().label("keys"),
        func.count(w.missed).label("missed"),
        func.sum(cast(_at_risk(), Integer)).label("at_risk"),
    ).group_by(w.sla_id)
    if sla_ids is not None:
        query = query.where(w.sla_id.in_(list(sla_ids)))
    warned = set(warned)
    async with db.connect() as conn:
        rows = (await conn.execute(query)).all()
    return {
        r.sla_id: SLACounts(
            int(r.keys), int(r.missed), int(r.at_risk or 0) if r.sla_id in warned else 0
        )
        for r in rows
    }


async def sla_windows_first(
    db: AsyncEngine, sla_ids: Sequence[str], limit: int
) -> dict[str, list[Any]]:
    """Per SLA id, its windows that need a look first: missed, then at risk, then by the
    next due time; at most `limit` of each, in one query (a window function)."""
    if not sla_ids:
        return {}
    w = sla_windows.c
    rank = (
        func.row_number()
        .over(partition_by=w.sla_id, order_by=(w.missed.is_(None), ~_at_risk(), w.due, w.key))
        .label("rank")
    )
    ranked = select(sla_windows, rank).where(w.sla_id.in_(list(sla_ids))).subquery()
    query = select(ranked).where(ranked.c.rank <= limit).order_by(ranked.c.sla_id, ranked.c.rank)
    found: dict[str, list[Any]] = defaultdict(list)
    async with db.connect() as conn:
        for row in (await conn.execute(query)).all():
            found[row.sla_id].append(row)
    return found
