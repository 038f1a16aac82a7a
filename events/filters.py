"""Event filters with Prefect's field names: matched in SQL by the store and in memory
by live subscribers, with the same semantics.

Label values accept Prefect's forms: an exact value, a `prefix*` glob and `!value`
negation; a list of values matches any of them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from events.model import Event, Resource

LabelValues = str | list[str]


class _Filter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _drop_unset(cls, data: Any) -> Any:
        # Prefect's clients send every field of their filters (`model_dump()`), unset ones
        # as null, [], {} or false: each subscriber's filter has `"id": {"id": []}`, and a
        # resource filter `"distinct": false`. Prefect reads all of those as "no
        # condition", so drop them: [] must not match nothing, and Prefect-only fields
        # left unset must not trip extra="forbid" (set ones still do).
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if not _unset(v)}
        return data


def _unset(value: Any) -> bool:
    return value is None or value is False or value == [] or value == {}


def _values(spec: LabelValues) -> list[str]:
    return [spec] if isinstance(spec, str) else spec


Glob = Callable[[str, str], bool]


def prefix_glob(actual: str, pattern: str) -> bool:
    """Prefect's filter globs: exact, or `prefix*`."""
    if pattern.endswith("*"):
        return actual.startswith(pattern[:-1])
    return actual == pattern


def value_matches(actual: str | None, spec: LabelValues, glob: Glob = prefix_glob) -> bool:
    """Positive values are ORed, `!` values must all hold, a missing label never matches."""
    if actual is None:
        return False
    values = _values(spec)
    positives = [v for v in values if not v.startswith("!")]
    negatives = [v[1:] for v in values if v.startswith("!")]
    if any(glob(actual, n) for n in negatives):
        return False
    return not positives or any(glob(actual, p) for p in positives)


def labels_match(
    resource: Mapping[str, str],
    labels: Mapping[str, LabelValues],
    glob: Glob = prefix_glob,
) -> bool:
    """Every label spec holds for the resource."""
    get = resource.get
    return all(value_matches(get(name), spec, glob) for name, spec in labels.items())


class EventOccurredFilter(_Filter):
    """Time window on `occurred` (inclusive)."""

    since: datetime | None = Field(default=None, description="Only events at or after this.")
    until: datetime | None = Field(default=None, description="Only events at or before this.")

    def includes(self, event: Event) -> bool:
        return (self.since is None or event.occurred >= self.since) and (
            self.until is None or event.occurred <= self.until
        )


class EventNameFilter(_Filter):
    """Event names by prefix or exact name, with excludes."""

    prefix: list[str] | None = Field(default=None, description="Names starting with any.")
    exclude_prefix: list[str] | None = Field(default=None, description="Not starting with any.")
    name: list[str] | None = Field(default=None, description="Exactly one of these names.")
    exclude_name: list[str] | None = Field(default=None, description="None of these names.")

    def includes(self, event: Event) -> bool:
        name = event.event
        return (
            (self.prefix is None or any(name.startswith(p) for p in self.prefix))
            and (
                self.exclude_prefix is None
                or not any(name.startswith(p) for p in self.exclude_prefix)
            )
            and (self.name is None or name in self.name)
            and (self.exclude_name is None or name not in self.exclude_name)
        )


class EventResourceFilter(_Filter):
    """The event's own resource."""

    id: list[str] | None = Field(default=None, description="Resource id is one of these.")
    id_prefix: list[str] | None = Field(default=None, description="Resource id starts with any.")
    labels: dict[str, LabelValues] | None = Field(default=None, description="Label specs.")

    def includes_resource(self, resource: Resource) -> bool:
        rid = resource.id
        return (
            (self.id is None or rid in self.id)
            and (self.id_prefix is None or any(rid.startswith(p) for p in self.id_prefix))
            and (self.labels is None or labels_match(resource, self.labels))
        )

    def includes(self, event: Event) -> bool:
        return self.includes_resource(event.resource)


class EventRelatedFilter(_Filter):
    """Some related resource satisfies every given condition."""

    id: list[str] | None = Field(default=None, description="Related resource id is one of these.")
    role: list[str] | None = Field(default=None, description="Related resource plays one of these.")
    labels: dict[str, LabelValues] | None = Field(default=None, description="Label specs.")

    def includes(self, event: Event) -> bool:
        return any(
            (self.id is None or r.id in self.id)
            and (self.role is None or r.role in self.role)
            and (self.labels is None or labels_match(r, self.labels))
            for r in event.related
        )


class EventIDFilter(_Filter):
    """Events by id."""

    id: list[UUID] | None = Field(default=None, description="One of these ids.")

    def includes(self, event: Event) -> bool:
        return self.id is None or event.id in self.id


class EventOrder(StrEnum):
    """Sort order by `occurred`."""

    ASC = "ASC"
    DESC = "DESC"


class EventFilter(_Filter):
    """Which events to return: every given part must hold."""

    model_config = ConfigDict(extra="ignore")  # Prefect clients send fields we do not use

    occurred: EventOccurredFilter = Field(default_factory=EventOccurredFilter)
    event: EventNameFilter | None = None
    resource: EventResourceFilter | None = None
    any_resource: EventResourceFilter | None = Field(
        default=None, description="The resource or any related resource matches."
    )
    related: EventRelatedFilter | None = None
    id: EventIDFilter | None = None
    order: EventOrder = EventOrder.DESC

    @field_validator("related", mode="before")
    @classmethod
    def _one_related(cls, value: Any) -> Any:
        # Prefect also accepts a list of related filters; we take the first.
        if isinstance(value, list):
            return value[0] if value else None
        return value

    def includes(self, event: Event) -> bool:
        """The same decision the store's query makes, for one event in memory."""
        parts: list[Any] = [self.occurred, self.event, self.resource, self.related, self.id]
        if not all(part is None or part.includes(event) for part in parts):
            return False
        if self.any_resource is not None:
            return any(self.any_resource.includes_resource(r) for r in event.involved_resources())
        return True
