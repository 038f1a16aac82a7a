"""EventFilter as SQL: the conditions on the `events` table (and `event_resources`, for
related resources) that the events matching a filter meet."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, false, not_, or_, select, true

from events.filters import EventFilter, EventNameFilter, EventResourceFilter, LabelValues
from events.tables import event_resources, events


def matching(flt: EventFilter) -> list[ColumnElement[bool]]:
    """The conditions an `events` row meets when its event matches `flt` (all of them)."""
    c = events.c
    conditions = own_conditions(flt)
    # Related resources as `id IN (SELECT event_id ...)`, not a correlated EXISTS: for
    # each event scanned, SQLite would search the EXISTS through the resource_id (or role)
    # index, every row of that resource, so a filter on one flow read the related rows
    # once per event (docs/architecture.md has the figures).
    #
    # The related rows carry their event's `occurred`: the time range bounds them too, so
    # on PostgreSQL the subquery reads only the days in range of `event_resources`.
    r = event_resources.c
    related = related_conditions(flt)
    if related is not None:
        conditions.append(c.id.in_(select(r.event_id).where(true(), *related).correlate(None)))
    if flt.any_resource is not None:
        conditions.append(any_resource_condition(flt))
    return conditions


def own_conditions(flt: EventFilter) -> list[ColumnElement[bool]]:
    """The conditions of `flt` on the `events` row itself: time, name, resource, id."""
    c = events.c
    conditions = _within(flt, c.occurred)
    if flt.event is not None:
        conditions.extend(name_conditions(flt.event, c.event))
    if flt.resource is not None:
        conditions.extend(_resource_conditions(flt.resource, c.resource_id, c.resource))
    if flt.id is not None and flt.id.id is not None:
        conditions.append(c.id.in_([str(i) for i in flt.id.id]))
    return conditions


def related_conditions(flt: EventFilter) -> list[ColumnElement[bool]] | None:
    """The conditions on an `event_resources` row that `flt.related` asks some related
    row of the event to meet, with the time range (None without `related`)."""
    if flt.related is None:
        return None
    r = event_resources.c
    rel = flt.related
    related = _within(flt, r.occurred)
    if rel.id is not None:
        related.append(r.resource_id.in_(rel.id))
    if rel.role is not None:
        related.append(r.resource_role.in_(rel.role))
    for name, values in (rel.labels or {}).items():
        related.append(_label_condition(r.resource, name, values))
    return related


def any_resource_parts(
    flt: EventFilter,
) -> tuple[list[ColumnElement[bool]], list[ColumnElement[bool]]]:
    """`flt.any_resource` (set) as its two sides: the conditions on the `events` row's own
    resource, and those on one of its `event_resources` rows (with the time range)."""
    assert flt.any_resource is not None
    c, r = events.c, event_resources.c
    own = _resource_conditions(flt.any_resource, c.resource_id, c.resource)
    other = [
        *_within(flt, r.occurred),
        *_resource_conditions(flt.any_resource, r.resource_id, r.resource),
    ]
    return own, other


def any_resource_condition(flt: EventFilter) -> ColumnElement[bool]:
    """`flt.any_resource` (set) on an `events` row: its resource or a related one."""
    r = event_resources.c
    own, other = any_resource_parts(flt)
    return or_(
        and_(true(), *own),
        events.c.id.in_(select(r.event_id).where(true(), *other).correlate(None)),
    )


def _within(flt: EventFilter, column: Any) -> list[ColumnElement[bool]]:
    """The filter's time range on an `occurred` column."""
    conditions: list[ColumnElement[bool]] = []
    if flt.occurred.since is not None:
        conditions.append(column >= flt.occurred.since)
    if flt.occurred.until is not None:
        conditions.append(column <= flt.occurred.until)
    return conditions


def name_conditions(e: EventNameFilter, column: Any) -> list[ColumnElement[bool]]:
    """The conditions on an event name column (of `events` or `event_counts`)."""
    conditions: list[ColumnElement[bool]] = []
    if e.prefix is not None:
        conditions.append(or_(false(), *(column.startswith(p, autoescape=True) for p in e.prefix)))
    if e.exclude_prefix:
        conditions.extend(not_(column.startswith(p, autoescape=True)) for p in e.exclude_prefix)
    if e.name is not None:
        conditions.append(column.in_(e.name))
    if e.exclude_name:
        conditions.append(column.not_in(e.exclude_name))
    return conditions


def _label_condition(column: Any, name: str, spec: LabelValues) -> ColumnElement[bool]:
    values = [spec] if isinstance(spec, str) else spec
    value = column[name].as_string()
    positives: list[ColumnElement[bool]] = []
    negatives: list[ColumnElement[bool]] = []
    for item in values:
        target = negatives if item.startswith("!") else positives
        item = item.removeprefix("!")
        target.append(
            value.startswith(item[:-1], autoescape=True) if item.endswith("*") else value == item
        )
    condition: ColumnElement[bool] = value.is_not(None)
    if positives:
        condition = and_(condition, or_(*positives))
    if negatives:
        condition = and_(condition, not_(or_(*negatives)))
    return condition


def _resource_conditions(
    spec: EventResourceFilter, id_col: Any, labels_col: Any
) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if spec.id is not None:
        conditions.append(id_col.in_(spec.id))
    if spec.id_prefix is not None:
        conditions.append(
            or_(false(), *(id_col.startswith(p, autoescape=True) for p in spec.id_prefix))
        )
    for name, values in (spec.labels or {}).items():
        conditions.append(_label_condition(labels_col, name, values))
    return conditions
