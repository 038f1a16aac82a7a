"""Which Prefect servers this process follows: `sources:` from the definition files, and
the server at TRIPWIRE_PREFECT_API_URL when TRIPWIRE_PREFECT_FOLLOW is set."""

from __future__ import annotations

from collections.abc import Sequence

from events.bus import Bus
from events.follower import PrefectFollower, newest_stored
from events.sources import PrefectSource
from events.store import EventStore
from tripwire.settings import Settings


def followed_sources(settings: Settings, sources: Sequence[PrefectSource]) -> list[PrefectSource]:
    """The files' sources, plus the settings' one unless a file defines a source by its
    name (`prefect`)."""
    followed = list(sources)
    if settings.prefect_follow and settings.prefect_api_url:
        from_settings = PrefectSource(
            type="prefect",
            api_url=settings.prefect_api_url,
            events=settings.prefect_follow_events,
        )
        if all(source.name != from_settings.name for source in followed):
            followed.append(from_settings)
    return followed


def build_followers(
    settings: Settings, sources: Sequence[PrefectSource], bus: Bus, store: EventStore
) -> list[PrefectFollower]:
    """One follower per source, authenticating with the TRIPWIRE_PREFECT_* credentials."""
    key, auth = settings.prefect_api_key, settings.prefect_api_auth_string
    return [
        PrefectFollower(
            source,
            bus,
            api_key=key.get_secret_value() if key else None,
            auth_string=auth.get_secret_value() if auth else None,
            resume_point=newest_stored(store),
        )
        for source in followed_sources(settings, sources)
    ]
