"""Properties of the event model: valid events survive JSON unchanged, and anything else is
refused with a clear error naming the field, never another exception."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from events.errors import InvalidEvent
from events.model import RESOURCE_ID, RESOURCE_ROLE, Event, ReceivedEvent
from events.parsing import parse_body, receive_events_json
from tests.properties import SETTINGS

# Names and labels: any text but NUL (refused: PostgreSQL cannot store it).
LABEL = st.characters(codec="utf-8", exclude_characters="\x00")
TEXT = st.text(LABEL, max_size=12)
NAME = st.text(LABEL, min_size=1, max_size=40)

# JSON as orjson writes it: integers within 64 bits, finite floats.
JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
JSON = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)

OFFSETS = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
TIMES = st.datetimes(
    min_value=datetime(1970, 1, 2), max_value=datetime(9000, 1, 1), timezones=OFFSETS
)


def labels(*required: str) -> st.SearchStrategy[dict[str, str]]:
    """Flat string labels with the required ones set (not empty)."""
    extra = st.dictionaries(TEXT, TEXT, max_size=4)
    needed = st.fixed_dictionaries({name: NAME for name in required})
    return st.tuples(extra, needed).map(lambda pair: {**pair[0], **pair[1]})


EVENTS = st.fixed_dictionaries(
    {
        "event": NAME,
        "resource": labels(RESOURCE_ID),
        # Set here: their defaults (a new id, the clock) differ on every parse.
        "id": st.uuids().map(str),
        "occurred": TIMES.map(datetime.isoformat),
    },
    optional={
        "related": st.lists(labels(RESOURCE_ID, RESOURCE_ROLE), max_size=3),
        "payload": st.dictionaries(TEXT, JSON, max_size=4),
        "follows": st.none() | st.uuids().map(str),
    },
)


@SETTINGS
@given(document=EVENTS)
def test_a_valid_event_round_trips_through_json_unchanged(document: dict[str, Any]) -> None:
    event = Event.model_validate(document)
    assert Event.model_validate_json(event.model_dump_json()) == event
    # What a client sends is what the engine keeps, whichever way it is parsed.
    [received] = receive_events_json(orjson.dumps(document))
    assert Event.model_validate(received.model_dump()) == event
    assert received.occurred.tzinfo == UTC
    assert event.resource == document["resource"]
    assert event.payload == document.get("payload", {})
    stored = ReceivedEvent.model_validate_json(received.model_dump_json())
    assert stored.model_dump() == received.model_dump()


def _broken(document: dict[str, Any], field: str, value: Any) -> dict[str, Any]:
    broken = dict(document)
    if value is _DROP:
        broken.pop(field, None)
    else:
        broken[field] = value
    return broken


_DROP = object()
FIELDS = st.sampled_from(["event", "resource", "related", "payload", "id", "occurred", "follows"])
BROKEN = st.builds(_broken, EVENTS, FIELDS, JSON | st.just(_DROP))
ANYTHING = BROKEN | JSON | st.lists(BROKEN | JSON, max_size=3)


@SETTINGS
@given(document=ANYTHING)
def test_anything_else_is_refused_with_a_validation_error(document: Any) -> None:
    try:
        Event.model_validate(document)
    except ValidationError as exc:
        error = exc
    else:
        return
    assert error.errors()  # pydantic's own error, with a location per problem


@SETTINGS
@given(document=ANYTHING)
def test_bad_bodies_are_refused_naming_the_field(document: Any) -> None:
    try:
        receive_events_json(orjson.dumps(document))
    except InvalidEvent as exc:
        error = exc
    else:
        return
    assert error.message
    assert "Traceback" not in str(error)


@SETTINGS
@given(body=st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_arbitrary_bytes_are_refused_as_invalid_events(body: bytes) -> None:
    try:
        receive_events_json(body)
    except InvalidEvent as exc:
        error = exc
    else:
        return
    assert error.message


CE_HEADERS = st.dictionaries(
    st.sampled_from(
        ["ce-specversion", "ce-type", "ce-source", "ce-id", "ce-time", "ce-subject", "ce-x"]
    ),
    st.sampled_from(["1.0", "", "0.3", "x", "2026-01-01T00:00:00Z", "not a time"]) | TEXT,
    max_size=6,
)
CONTENT_TYPES = st.sampled_from(
    [
        "application/json",
        "application/cloudevents+json",
        "application/cloudevents-batch+json",
        "text/plain",
        "application/xml",
        "",
    ]
)
CE_DOCUMENTS = st.fixed_dictionaries(
    {},
    optional={
        "specversion": st.sampled_from(["1.0", "0.3"]) | JSON,
        "type": NAME | JSON,
        "source": NAME | JSON,
        "id": NAME | JSON,
        "time": TIMES.map(datetime.isoformat) | JSON,
        "subject": NAME | JSON,
        "data": JSON,
        "data_base64": TEXT,
        "datacontenttype": st.sampled_from(["application/json", "text/plain"]) | TEXT,
    },
)


@SETTINGS
@given(
    content_type=CONTENT_TYPES,
    headers=CE_HEADERS,
    body=CE_DOCUMENTS.map(orjson.dumps)
    | st.lists(CE_DOCUMENTS, max_size=3).map(orjson.dumps)
    | st.binary(max_size=64),
)
def test_any_encoding_is_parsed_or_refused_as_invalid(
    content_type: str, headers: dict[str, str], body: bytes
) -> None:
    try:
        events = parse_body(body, content_type, headers)
    except InvalidEvent as exc:
        assert exc.message  # noqa: PT017  # refused: the message says why
        return
    assert events
    for event in events:
        assert event.resource[RESOURCE_ID]


@pytest.mark.parametrize("where", ["event", "resource", "related"])
def test_a_nul_character_in_names_and_labels_is_refused(where: str) -> None:
    # PostgreSQL cannot store NUL in text: accepted, such an event would never be stored.
    document: dict[str, Any] = {"event": "e", "resource": {RESOURCE_ID: "r"}}
    if where == "event":
        document["event"] = "e\x00"
    elif where == "resource":
        document["resource"] = {RESOURCE_ID: "r", "team\x00": "x"}
    else:
        document["related"] = [{RESOURCE_ID: "r\x00", RESOURCE_ROLE: "flow"}]
    with pytest.raises(InvalidEvent) as error:
        receive_events_json(orjson.dumps(document))
    assert error.value.field is not None
    assert error.value.field.startswith(where)
    assert "NUL" in error.value.message
