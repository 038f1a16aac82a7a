"""An alert: what an automation's firings, or an SLA's misses, say about one key, from
the first firing until it resolves.

Its fingerprint is the source (automation or SLA) and the `for_each` key, so every
firing for the same key feeds the same alert while it is open. Once resolved, the next
firing opens a new alert with the same fingerprint: the history keeps both.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

import orjson

Labels = dict[str, str | list[str]]


class AlertState(StrEnum):
    """Where an alert is in its life."""

    firing = "firing"
    acknowledged = "acknowledged"  # someone is on it: no repeats until it fires again
    resolved = "resolved"


def fingerprint(kind: str, source_id: str, key: dict[str, str]) -> str:
    """The same for every firing of one source and key."""
    raw = orjson.dumps([kind, source_id, sorted(key.items())])
    return hashlib.sha256(raw).hexdigest()[:32]


@dataclass
class Alert:
    """One episode of an alert, as the `alerts` table holds it."""

    id: str
    fingerprint: str
    kind: str  # automation or sla
    source_id: str
    name: str
    key: dict[str, str]
    labels: Labels
    severity: str
    state: AlertState
    summary: str
    first_fired: datetime
    last_fired: datetime
    count: int = 1
    pending_until: datetime | None = None
    resolve_at: datetime | None = None
    resolved: datetime | None = None
    resolved_by: str | None = None
    acknowledged: datetime | None = None
    acknowledged_until: datetime | None = None
    acknowledged_by: str | None = None
    comment: str | None = None
    downstream: list[str] = field(default_factory=list)
    updated: datetime | None = None
    changed: bool = field(default=False, compare=False)  # to be written back

    @property
    def open(self) -> bool:
        return self.state is not AlertState.resolved

    def row(self) -> dict[str, Any]:
        """The table row (updated is set by the writer)."""
        return {
            "id": self.id,
            "fingerprint": self.fingerprint,
            "open_fingerprint": self.fingerprint if self.open else None,
            "kind": self.kind,
            "source_id": self.source_id,
            "name": self.name,
            "key": self.key,
            "labels": self.labels,
            "severity": self.severity,
            "state": self.state.value,
            "summary": self.summary,
            "first_fired": self.first_fired,
            "last_fired": self.last_fired,
            "count": self.count,
            "pending_until": self.pending_until,
            "resolve_at": self.resolve_at,
            "resolved": self.resolved,
            "resolved_by": self.resolved_by,
            "acknowledged": self.acknowledged,
            "acknowledged_until": self.acknowledged_until,
            "acknowledged_by": self.acknowledged_by,
            "comment": self.comment,
            "downstream": self.downstream,
        }

    @classmethod
    def from_row(cls, row: Any) -> Alert:
        values = dict(row._mapping)
        values.pop("open_fingerprint", None)
        values["state"] = AlertState(values["state"])
        return cls(**values)

    def brief(self) -> dict[str, Any]:
        """What a notice lists about the alert, and what templates see in `alerts`."""
        return {
            "id": self.id,
            "fingerprint": self.fingerprint,
            "name": self.name,
            "kind": self.kind,
            "state": self.state.value,
            "severity": self.severity,
            "summary": self.summary,
            "key": self.key,
            "labels": self.labels,
            "first_fired": self.first_fired.isoformat(),
            "last_fired": self.last_fired.isoformat(),
            "count": self.count,
            "downstream": self.downstream,
        }

    def as_json(self) -> dict[str, Any]:
        """The whole alert, for the API and the `tripwire.alert.*` events."""
        out = self.brief()
        out.update(
            source_id=self.source_id,
            pending_until=_iso(self.pending_until),
            resolve_at=_iso(self.resolve_at),
            resolved=_iso(self.resolved),
            resolved_by=self.resolved_by,
            acknowledged=_iso(self.acknowledged),
            acknowledged_until=_iso(self.acknowledged_until),
            acknowledged_by=self.acknowledged_by,
            comment=self.comment,
        )
        return out


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
