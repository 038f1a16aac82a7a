"""What the follower publishes, on a stand-in bus: copies by id dropped, names outside the
globs dropped, the resume point never past our own clock. The real server is in
test_follower.py."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import orjson
import pytest

from events import clock
from events.bus import Bus
from events.errors import BusUnavailable
from events.follower import PrefectFollower
from events.keys import EventMessage
from events.sources import PrefectSource

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


class RecordingBus:
    """Keeps what is published; refuses while `down`."""

    def __init__(self) -> None:
        self.published: list[dict[str, Any]] = []
        self.down = False

    async def publish_events(self, messages: Sequence[EventMessage]) -> None:
        if self.down:
            raise BusUnavailable("down")
        self.published += [orjson.loads(message.data) for message in messages]


def prefect_event(name: str, occurred: datetime, event_id: str) -> dict[str, Any]:
    return {
        "id": event_id,
        "occurred": occurred.isoformat(),
        "event": name,
        "resource": {"prefect.resource.id": "prefect.flow-run.1"},
        "related": [{"prefect.resource.id": "prefect.flow.2", "prefect.resource.role": "flow"}],
        "payload": {"validated_state": {"type": "COMPLETED"}},
        "received": "2000-01-01T00:00:00Z",  # Prefect's; tripwire stamps its own
    }


def follower(bus: RecordingBus) -> PrefectFollower:
    source = PrefectSource(type="prefect", api_url="http://p/api", events=["prefect.flow-run.*"])
    return PrefectFollower(source, cast(Bus, bus))


async def test_copies_and_other_names_are_dropped_and_received_is_ours() -> None:
    bus = RecordingBus()
    following = follower(bus)
    first = prefect_event("prefect.flow-run.Completed", NOW, "01a1fea8-f851-70e7-893a-5ef20dc7a729")
    other = prefect_event("prefect.task-run.Completed", NOW, "01a1fea8-f851-70e7-893a-5ef20dc7a72a")
    with clock.frozen_clock(NOW + timedelta(seconds=1)):
        await following._publish([first, first, other])
        await following._publish([first])  # the overlap of a resume
    [published] = bus.published
    assert published["id"] == first["id"]
    assert published["related"] == first["related"]
    assert published["received"] == "2026-11-21T12:00:01Z"
    assert following.status.forwarded == 1


async def test_a_refused_batch_is_sent_again_and_a_clock_ahead_does_not_move_resume() -> None:
    bus = RecordingBus()
    following = follower(bus)
    ahead = prefect_event(
        "prefect.flow-run.Running", NOW + timedelta(hours=1), "01a1fea8-f851-70e7-893a-5ef20dc7a72b"
    )
    bus.down = True
    with clock.frozen_clock(NOW):
        with pytest.raises(BusUnavailable):
            await following._publish([ahead])
        assert bus.published == []
        assert following.status.newest_occurred is None
        bus.down = False
        await following._publish([ahead])  # not taken for a copy: it never got out
    assert len(bus.published) == 1
    assert following.status.newest_occurred == NOW  # not an hour ahead
