"""The silences' say over actions that do not go through the alerts engine: a firing's
own notification actions (those without `grouping:`) and, under a silence that says
`actions: all`, every other action. The action runner asks before each attempt."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncEngine

from actions.model import NOTIFICATION_TYPES
from actions.request import ActionRequest
from alerts.matchers import Labels
from alerts.muting import Muting, read_muting
from alerts.signals import automation_labels, sla_labels
from events import clock
from triggers.repository import AutomationNotFound, AutomationStore

log = logging.getLogger("tripwire.alerts")


READ_EVERY = 1.0  # seconds a reading of what mutes serves the attempts after it


class SilenceGate:
    """Says why an action request is held back, or None to run it.

    What mutes is read at most once a second, not for every attempt: a busy actions role
    runs thousands a second. A silence added or expired by hand is read at once (`forget`,
    told over NATS); a window or silence that ends, when it ends; anything else (an
    inhibiting alert, a silence that ended with its alerts) within the second."""

    def __init__(self, db: AsyncEngine, automations: AutomationStore) -> None:
        self.db = db
        self.automations = automations
        self._muting: Muting | None = None
        self._read_at = 0.0
        self._reading = asyncio.Lock()

    def _current(self, now: datetime) -> Muting | None:
        cached = self._muting
        fresh = time.monotonic() - self._read_at < READ_EVERY
        if cached is None or not fresh or (cached.next_change and now >= cached.next_change):
            return None
        return cached

    async def muting(self) -> Muting:
        """What mutes now, read again when the last reading is a second old."""
        now = clock.now()
        cached = self._current(now)
        if cached is not None:
            return cached
        # One reading serves every attempt waiting for it: read by each, a thousand
        # concurrent actions took a connection apiece, past the pool, once a second.
        async with self._reading:
            cached = self._current(now)
            if cached is None:
                async with self.db.connect() as conn:
                    cached = self._muting = await read_muting(conn, now)
                self._read_at = time.monotonic()
        return cached

    def forget(self, _: bytes = b"") -> None:
        """Silences changed: read them again before the next attempt."""
        self._muting = None

    async def __call__(self, request: ActionRequest) -> str | None:
        if request.notice is not None:
            return None  # sent by the alerts engine, which has decided already
        muting = await self.muting()
        if not muting.silences and not muting.rules:
            return None
        labels = await self._labels(request)
        if labels is None:
            return None
        if request.action.type not in NOTIFICATION_TYPES:
            holding = muting.holding_actions(labels)
            return f"silenced by {_names(s.label for s in holding)}" if holding else None
        silenced = muting.silenced_by(labels)
        if silenced:
            return f"silenced by {_names(s.label for s in silenced)}"
        inhibiting = muting.inhibitors(labels)
        if inhibiting:
            return f"inhibited by {_names(f'{a.name} (alert {a.id})' for a in inhibiting)}"
        return None

    async def _labels(self, request: ActionRequest) -> Labels | None:
        """The labels the alert of this request's firing has."""
        if request.sla is not None:
            return sla_labels(request.sla, str(request.sla.get("state", "missed")))
        try:
            stored = await self.automations.get(str(request.automation.id))
        except AutomationNotFound:
            return None  # deleted since it fired: nothing to match it by
        event = request.triggering_event
        resource = dict(event.resource) if event is not None else None
        return automation_labels(stored.automation, request.triggering_labels, resource)


def _names(labels: Iterable[str]) -> str:
    return ", ".join(labels)
