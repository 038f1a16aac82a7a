"""What an evaluation pass produces: an outcome and a decision (why it did or did not
fire) per candidate, the firings, and the messages to publish after commit."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from events import clock
from events.model import ReceivedEvent
from triggers.firing import Firing, Message


class Outcome(StrEnum):
    """What happened to one candidate (event x trigger)."""

    fired = "fired"
    resolved = "resolved"
    counted = "counted"
    armed = "armed"
    waiting = "waiting"  # not armed: no `after` event yet
    late = "late"
    unmatched = "unmatched"  # labels or related resources
    filtered = "filtered"  # `where` was false
    paused = "paused"
    stopped = "stopped"  # the cascade guard
    expired = "expired"  # a proactive window ended with enough events
    measured = "measured"  # a metric trigger's value against its threshold, no change


# Recorded whatever the decision budget says (see `triggers.budget`).
ALWAYS_RECORDED = frozenset({Outcome.fired, Outcome.resolved, Outcome.armed, Outcome.stopped})


@dataclass
class Decision:
    """Why one automation did or did not fire on one event (or at one window's end)."""

    automation_id: str
    trigger_id: str
    outcome: Outcome
    reason: str
    event: ReceivedEvent | None = None
    decided: datetime = field(default_factory=clock.now)

    def row(self) -> dict[str, Any]:
        """The `decisions` row of this decision."""
        event = self.event
        return {
            "automation_id": self.automation_id,
            "trigger_id": self.trigger_id,
            "event_id": str(event.id) if event else None,
            "event": event.event if event else None,
            "occurred": event.occurred if event else None,
            "decided": self.decided,
            "outcome": self.outcome.value,
            "reason": self.reason,
        }


@dataclass
class Result:
    """What one evaluation pass produced (already written to the transaction)."""

    firings: list[Firing] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    next_due: datetime | None = None


def span_text(value: timedelta) -> str:
    """A window's length as people write it in a definition: 10m, 2h, 90s."""
    seconds = int(value.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def instant_text(value: datetime) -> str:
    """An instant in a reason, to the second."""
    return value.isoformat(timespec="seconds")
