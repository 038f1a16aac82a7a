"""An event's key: its resource id. Events of one resource share a partition of the
events stream, so one worker holds the windows they touch (events/owners.py)."""

from __future__ import annotations

import hashlib
from typing import NamedTuple
from uuid import UUID


class EventMessage(NamedTuple):
    """One encoded event for the events stream."""

    id: UUID
    data: bytes
    key: str  # the event's resource id


def key_token(key: str) -> str:
    """The key as one subject token (resource ids may hold dots, spaces or wildcards)."""
    return hashlib.blake2b(key.encode(), digest_size=8).hexdigest()


def keyed(subject: str, key: str) -> str:
    """The subject an event with this key is published on, under the events subject."""
    return f"{subject}.{key_token(key)}"
