"""Streams are declared at start-up: created once, updated when the settings change."""

from __future__ import annotations

import uuid
from datetime import timedelta

from events.bus import Bus, Names, StreamSettings
from events.embedded import EmbeddedNats
from events.keys import EventMessage


async def test_streams_are_created_then_updated_idempotently(nats_server: EmbeddedNats) -> None:
    names = Names(f"b{uuid.uuid4().hex[:8]}")
    first = Bus(nats_server.url, names, StreamSettings(events_max_age=timedelta(days=7)))
    await first.connect()
    await first.declare_streams()  # a second declaration with the same settings is a no-op
    info = await first.js.stream_info(names.events_stream)
    assert info.config.max_age == 7 * 86400
    assert info.config.subjects == [names.events_wildcard]
    assert info.config.duplicate_window == 600
    await first.close()

    second = Bus(nats_server.url, names, StreamSettings(events_max_age=timedelta(days=2)))
    await second.connect()
    info = await second.js.stream_info(names.events_stream)
    assert info.config.max_age == 2 * 86400
    actions = await second.js.stream_info(names.actions_stream)
    assert actions.config.subjects == [names.actions_wildcard]
    await second.close()


async def test_a_resent_id_is_stored_once_by_jetstream(nats_server: EmbeddedNats) -> None:
    names = Names(f"b{uuid.uuid4().hex[:8]}")
    bus = Bus(nats_server.url, names)
    await bus.connect()
    event_id = uuid.uuid4()
    await bus.publish_events([EventMessage(event_id, b"{}", "r")])
    await bus.publish_events(
        [EventMessage(event_id, b"{}", "r"), EventMessage(uuid.uuid4(), b"{}", "r")]
    )
    info = await bus.js.stream_info(names.events_stream)
    assert info.state.messages == 2
    await bus.close()
