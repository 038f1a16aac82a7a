"""The events page's filters, from its query string to an EventFilter: the filters of
`tripwire events ls`, plus labels, related resources and a time range."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from events import clock
from events.durations import parse_duration
from events.filters import EventFilter
from events.parsing import describe
from events.timestamps import as_utc

DEFAULT_RANGE = timedelta(hours=24)
MAX_RANGE = timedelta(days=365)


class QueryError(ValueError):
    """A filter that cannot be used; names the form field at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _moment(field: str, text: str, now: datetime) -> datetime:
    """ "2026-12-06T09:00:00Z", "2026-12-06 09:00" (UTC), or a duration back from now ("6h")."""
    try:
        return as_utc(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError:
        pass
    back = parse_duration(text)
    if isinstance(back, timedelta) and back <= MAX_RANGE:
        return now - back
    raise QueryError(
        field,
        f"{field}: {text!r} is neither a time (2026-12-06T09:00Z) nor a duration up to "
        "365d back (6h)",
    )


def _id_or_prefix(text: str) -> dict[str, list[str]]:
    stem = text.removesuffix("*")
    return {"id_prefix": [stem]} if stem != text else {"id": [text]}


def _labels(field: str, text: str) -> dict[str, list[str]]:
    """ "k=v, k2=v2" → {"k": ["v"], "k2": ["v2"]}; a value may be a glob or start with !."""
    labels: dict[str, list[str]] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        if not sep or not name.strip():
            raise QueryError(field, f"{field}: write labels as name=value, comma-separated")
        labels.setdefault(name.strip(), []).append(value.strip())
    return labels


@dataclass(frozen=True)
class EventQuery:
    """What the events page was asked for; empty strings are "any"."""

    event: str = ""  # a name prefix
    resource: str = ""  # an id, or a prefix ending in *
    labels: str = ""  # resource labels, name=value, comma-separated
    related: str = ""  # a related resource's id, or a prefix ending in *
    role: str = ""  # the related resource's role
    about: str = ""  # the resource or a related one: an id, or a prefix ending in *
    since: str = ""  # a time or a duration back from now; default 24h
    until: str = ""

    @classmethod
    def from_params(cls, params: Any) -> EventQuery:
        return cls(**{name: str(params.get(name, "")).strip() for name in cls.__dataclass_fields__})

    def params(self) -> dict[str, str]:
        """The fields that are set, for links that keep the filters."""
        return {name: value for name, value in asdict(self).items() if value}

    def window(self, now: datetime | None = None) -> tuple[datetime, datetime]:
        now = now or clock.now()
        since = _moment("since", self.since, now) if self.since else now - DEFAULT_RANGE
        until = _moment("until", self.until, now) if self.until else now
        if until <= since:
            raise QueryError("until", "until: must be later than since")
        return since, until

    def to_filter(self, now: datetime | None = None) -> EventFilter:
        since, until = self.window(now)
        spec: dict[str, Any] = {
            "occurred": {"since": since.isoformat(), "until": until.isoformat()}
        }
        if self.event:
            spec["event"] = {"prefix": [self.event]}
        resource: dict[str, Any] = {}
        if self.resource:
            resource.update(_id_or_prefix(self.resource))
        if self.labels:
            resource["labels"] = _labels("labels", self.labels)
        if resource:
            spec["resource"] = resource
        related: dict[str, Any] = {}
        if self.related:
            related.update(_id_or_prefix(self.related))
        if self.role:
            related["role"] = [self.role]
        if related:
            spec["related"] = related
        if self.about:
            spec["any_resource"] = _id_or_prefix(self.about)
        try:
            return EventFilter.model_validate(spec)
        except ValidationError as exc:
            raise QueryError("filter", str(describe(exc, "filter"))) from None
