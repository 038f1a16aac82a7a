"""Events: the model, the bus, ingestion, the store and the client.

The names below are imported on first use (PEP 562): `from events.clock import now`, or a
CLI command that only talks HTTP, must not pay for the bus, the store and their drivers.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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
    from events.errors import (
        ApplyConflict,
        ApplyRefused,
        BusUnavailable,
        DuplicateName,
        EventsError,
        EventTooLarge,
        InvalidEvent,
    )
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
    from events.loading import DefinitionError, Definitions, Section, load_paths, load_text
    from events.model import Event, ReceivedEvent, RelatedResource, Resource
    from events.reconcile import Change, ChangeKind, Kind, applying, reconcile
    from events.sources import PrefectSource
    from events.store import Countable, CountBucket, EventStore, Page
    from events.tables import metadata

# The module each public name comes from.
_SOURCES = {
    "events.bus": ("Bus", "Names", "StreamSettings"),
    "events.client": (
        "AsyncTripwireClient",
        "TripwireClient",
        "aemit_event",
        "api_auth_headers",
        "build_event",
        "emit_event",
        "resolve_api_url",
    ),
    "events.clock": ("FrozenClock", "frozen_clock", "now", "set_clock"),
    "events.embedded": ("EmbeddedNats", "free_port"),
    "events.errors": (
        "ApplyConflict",
        "ApplyRefused",
        "BusUnavailable",
        "DuplicateName",
        "EventTooLarge",
        "EventsError",
        "InvalidEvent",
    ),
    "events.filters": (
        "EventFilter",
        "EventIDFilter",
        "EventNameFilter",
        "EventOccurredFilter",
        "EventOrder",
        "EventRelatedFilter",
        "EventResourceFilter",
    ),
    "events.follower": ("FollowerState", "PrefectFollower"),
    "events.loading": ("DefinitionError", "Definitions", "Section", "load_paths", "load_text"),
    "events.model": ("Event", "ReceivedEvent", "RelatedResource", "Resource"),
    "events.reconcile": ("Change", "ChangeKind", "Kind", "applying", "reconcile"),
    "events.sources": ("PrefectSource",),
    "events.store": ("CountBucket", "Countable", "EventStore", "Page"),
    "events.tables": ("metadata",),
}
_SOURCE_OF = {name: module for module, names in _SOURCES.items() for name in names}

__all__ = [
    "ApplyConflict",
    "ApplyRefused",
    "AsyncTripwireClient",
    "Bus",
    "BusUnavailable",
    "Change",
    "ChangeKind",
    "CountBucket",
    "Countable",
    "DefinitionError",
    "Definitions",
    "DuplicateName",
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
    "Kind",
    "Names",
    "Page",
    "PrefectFollower",
    "PrefectSource",
    "ReceivedEvent",
    "RelatedResource",
    "Resource",
    "Section",
    "StreamSettings",
    "TripwireClient",
    "aemit_event",
    "api_auth_headers",
    "applying",
    "build_event",
    "emit_event",
    "free_port",
    "frozen_clock",
    "load_paths",
    "load_text",
    "metadata",
    "now",
    "reconcile",
    "resolve_api_url",
    "set_clock",
]

# Hidden from type checkers, which read the imports above: a module __getattr__ would make
# any misspelt `from events import ...` type-check.
if not TYPE_CHECKING:

    def __getattr__(name: str) -> Any:
        module = _SOURCE_OF.get(name)
        if module is None:
            raise AttributeError(f"module 'events' has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        globals()[name] = value  # later lookups skip this function
        return value

    def __dir__() -> list[str]:
        return sorted({*globals(), *__all__})
