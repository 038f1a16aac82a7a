"""The event model: Prefect's schema and limits, errors that name the field."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest
from pydantic import ValidationError
from uuid6 import uuid7

from events import clock
from events.errors import InvalidEvent
from events.model import Event, ReceivedEvent
from events.parsing import receive_events_json
from tests.support import fixture_events


def test_every_captured_prefect_event_loads_unchanged() -> None:
    for raw in fixture_events():
        event = ReceivedEvent.model_validate(raw)
        assert str(event.id) == raw["id"]
        assert event.resource == raw["resource"]
        assert [r.role for r in event.related] == [
            r["prefect.resource.role"] for r in raw["related"]
        ]
        assert event.model_dump(mode="json")["related"] == raw["related"]


def test_a_stored_event_builds_the_same_event_as_validating_it() -> None:
    for raw in fixture_events():
        stored = orjson.loads(ReceivedEvent.model_validate(raw).model_dump_json())
        built = ReceivedEvent.from_stored(stored)
        assert built == ReceivedEvent.model_validate(stored)
        assert built.model_dump_json() == ReceivedEvent.model_validate(stored).model_dump_json()
        assert built.occurred.utcoffset() == timedelta(0)
        assert [r.role for r in built.related] == [
            r["prefect.resource.role"] for r in raw["related"]
        ]
    follower = ReceivedEvent(
        event="e", resource={"prefect.resource.id": "r"}, follows=uuid7(), payload={"n": [1]}
    )
    stored = orjson.loads(follower.model_dump_json())
    assert ReceivedEvent.from_stored(stored) == follower


def test_occurred_defaults_to_the_clock_and_is_utc() -> None:
    start = datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    with clock.frozen_clock(start) as frozen:
        assert Event(event="e", resource={"prefect.resource.id": "r"}).occurred == start
        frozen.advance(timedelta(hours=1))
        received = Event(event="e", resource={"prefect.resource.id": "r"}).receive()
        assert received.received == start + timedelta(hours=1)
    naive = Event(event="e", resource={"prefect.resource.id": "r"}, occurred=datetime(2026, 1, 1))
    assert naive.occurred.tzinfo == UTC


def test_related_resources_need_a_role() -> None:
    with pytest.raises(ValidationError, match=r"prefect\.resource\.role"):
        Event(
            event="e", resource={"prefect.resource.id": "r"}, related=[{"prefect.resource.id": "x"}]
        )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"event": "e", "resource": {"prefect.resource.id": ""}}', "resource"),
        (
            b'{"event": "e", "resource": {"prefect.resource.id": "r"}, '
            b'"related": [{"prefect.resource.id": "x"}]}',
            "related[0]",
        ),
        (b'{"event": "e", "resource": {"prefect.resource.id": "r"}, "id": "nope"}', "id"),
        (b'{"event": "e", "resource": {"prefect.resource.id": "r"}, "payload": []}', "payload"),
        (b'[{"event": "e", "resource": {"prefect.resource.id": "r"}}, 3]', "[1]"),
    ],
)
def test_validation_errors_name_the_field(body: bytes, field: str) -> None:
    with pytest.raises(InvalidEvent) as error:
        receive_events_json(body)
    assert error.value.field == field
