"""Events: the model, the bus, ingestion, the store and the client."""

from events.bus import Bus, Names, StreamSettings
from events.client import (
    AsyncTripwireClient,
    TripwireClient,
    aemit_event,
    api_auth_headers,
    build_event,
    emit_event,
    resolve_api_url,
)
from events.clock import FrozenClock, frozen_clock, now, set_clock
from events.embedded import EmbeddedNats, free_port
from events.errors import BusUnavailable, EventsError, EventTooLarge, InvalidEvent
from events.filters import (
    EventFilter,
    EventIDFilter,
    EventNameFilter,
    EventOccurredFilter,
    EventOrder,
    EventRelatedFilter,
    EventResourceFilter,
)
from events.follower import FollowerState, PrefectFollower
from events.model import Event, ReceivedEvent, RelatedResource, Resource
from events.sources import PrefectSource
from events.store import Countable, CountBucket, EventStore, Page
from events.tables import metadata

__all__ = [
    "AsyncTripwireClient",
    "Bus",
    "BusUnavailable",
    "CountBucket",
    "Countable",
    "EmbeddedNats",
    "Event",
    "EventFilter",
    "EventIDFilter",
    "EventNameFilter",
    "EventOccurredFilter",
    "EventOrder",
    "EventRelatedFilter",
    "EventResourceFilter",
    "EventStore",
    "EventTooLarge",
    "EventsError",
    "FollowerState",
    "FrozenClock",
    "InvalidEvent",
    "Names",
    "Page",
    "PrefectFollower",
    "PrefectSource",
    "ReceivedEvent",
    "RelatedResource",
    "Resource",
    "StreamSettings",
    "TripwireClient",
    "aemit_event",
    "api_auth_headers",
    "build_event",
    "emit_event",
    "free_port",
    "frozen_clock",
    "metadata",
    "now",
    "resolve_api_url",
    "set_clock",
]
