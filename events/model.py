"""The event, in Prefect's schema verbatim, with Prefect's limits."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, Final, Self
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, GetCoreSchemaHandler, field_validator
from pydantic_core import CoreSchema, core_schema
from uuid6 import uuid7

from events import clock

MAX_LABELS_PER_RESOURCE: Final = 500
MAX_RELATED_RESOURCES: Final = 100
MAX_EVENT_NAME_LENGTH: Final = 1024
MAX_EVENT_BYTES: Final = 1_500_000

RESOURCE_ID: Final = "prefect.resource.id"
RESOURCE_ROLE: Final = "prefect.resource.role"
RESOURCE_NAME: Final = "prefect.resource.name"
# PostgreSQL text cannot hold NUL: an event accepted with one could never be stored.
NUL_REFUSED: Final = "holds a NUL character (\\x00), which cannot be stored; remove it"


def _check_labels(labels: dict[str, str]) -> None:
    if len(labels) > MAX_LABELS_PER_RESOURCE:
        raise ValueError(f"has {len(labels)} labels; at most {MAX_LABELS_PER_RESOURCE} are allowed")
    if not labels.get(RESOURCE_ID):
        raise ValueError(f"the label '{RESOURCE_ID}' is required and must not be empty")
    if "\x00" in "".join(labels) or "\x00" in "".join(labels.values()):
        raise ValueError(f"a label {NUL_REFUSED}")


class Resource(dict[str, str]):
    """A resource: flat string labels, `prefect.resource.id` required.

    A plain dict underneath: pydantic validates it as `dict[str, str]` in Rust and only
    the two checks below run in Python, which keeps ingest fast.
    """

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_after_validator_function(cls._validate, handler(dict[str, str]))

    @classmethod
    def _validate(cls, labels: dict[str, str]) -> Self:
        _check_labels(labels)
        return cls(labels)

    @property
    def id(self) -> str:
        """The resource id (`prefect.resource.id`)."""
        return self[RESOURCE_ID]

    @property
    def name(self) -> str | None:
        """The resource name, when labelled."""
        return self.get(RESOURCE_NAME)


class RelatedResource(Resource):
    """A resource related to the event; also needs `prefect.resource.role`."""

    @classmethod
    def _validate(cls, labels: dict[str, str]) -> Self:
        _check_labels(labels)
        if not labels.get(RESOURCE_ROLE):
            raise ValueError(f"the label '{RESOURCE_ROLE}' is required on related resources")
        return cls(labels)

    @property
    def role(self) -> str:
        """The role this resource plays in the event."""
        return self[RESOURCE_ROLE]


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Event(BaseModel):
    """Something that happened to a resource, as a producer reports it."""

    # Prefect ignores unknown top-level fields; so do we.
    model_config = ConfigDict(extra="ignore")

    occurred: datetime = Field(
        default_factory=clock.now, description="When the event happened (UTC)."
    )
    event: str = Field(
        min_length=1,
        max_length=MAX_EVENT_NAME_LENGTH,
        description="Dotted event name, e.g. prefect.flow-run.Completed.",
    )
    resource: Resource = Field(description="The resource the event is about.")
    related: list[RelatedResource] = Field(
        default_factory=list,
        max_length=MAX_RELATED_RESOURCES,
        description="Other resources involved, each with a prefect.resource.role.",
    )
    payload: dict[str, Any] = Field(
        default_factory=dict, description="Free-form details of the event."
    )
    # Time-ordered (UUIDv7, as Prefect's client makes them): indexes stay append-only.
    id: UUID = Field(default_factory=uuid7, description="Unique id; resending it dedupes.")
    follows: UUID | None = Field(
        default=None, description="The id of an event this one is known to follow."
    )

    @field_validator("occurred")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return _aware(value)

    @field_validator("event")
    @classmethod
    def _no_nul(cls, value: str) -> str:
        if "\x00" in value:
            raise ValueError(f"the event name {NUL_REFUSED}")
        return value

    def involved_resources(self) -> Iterator[Resource]:
        """The resource, then each related resource."""
        yield self.resource
        yield from self.related

    def resources_in_role(self, role: str) -> list[RelatedResource]:
        """Related resources playing `role`."""
        return [r for r in self.related if r.role == role]

    def receive(self, received: datetime | None = None) -> ReceivedEvent:
        """Stamp the event as received by tripwire."""
        # Already validated: construct without validating every field again.
        return ReceivedEvent.model_construct(**dict(self), received=received or clock.now())


class ReceivedEvent(Event):
    """An event as tripwire accepted it: `received` is set by tripwire."""

    received: datetime = Field(
        default_factory=clock.now, description="When tripwire accepted the event (UTC)."
    )

    @field_validator("received")
    @classmethod
    def _received_utc(cls, value: datetime) -> datetime:
        return _aware(value)

    @classmethod
    def from_stored(cls, document: dict[str, Any]) -> ReceivedEvent:
        """An event as the store and the bus hold it: JSON this engine wrote from a
        validated event, so it is built without validating every field again (that was
        a fifth of screening an event against its candidate automations)."""
        follows = document.get("follows")
        return cls.model_construct(
            id=UUID(document["id"]),
            occurred=_aware(datetime.fromisoformat(document["occurred"])),
            event=document["event"],
            resource=Resource(document["resource"]),
            related=[RelatedResource(r) for r in document.get("related") or ()],
            payload=document.get("payload") or {},
            follows=UUID(follows) if follows else None,
            received=_aware(datetime.fromisoformat(document["received"])),
        )
