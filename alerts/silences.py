"""Silences and inhibition rules: what holds notifications back.

- A silence added by hand (`tripwire silence add`, `/api/silences`) covers the alerts its
  matchers select from `starts` to `ends`, or until they have resolved.
- A recurring silence in a definitions file (`silences:`) covers them in every window of
  its cron schedule: a maintenance window.
- An inhibition rule (`inhibit:`) mutes the alerts `mute` selects while an alert that
  `when` selects fires, and agrees with it on the `equal` labels.

A muted alert is still recorded and shown as silenced or inhibited; only notifications
about it are held back, and other actions too when a silence says `actions: all`.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any, Literal, Self

import orjson
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy.ext.asyncio import AsyncConnection

from alerts.matchers import NonEmptyMatchers
from alerts.schedule import Recurrence, active_window
from alerts.tables import inhibit_rules, recurring_silences
from events.durations import Duration
from events.reconcile import Kind
from triggers.repository import bump_revision

Holds = Literal["notifications", "all"]


def _holds() -> Any:
    return Field(
        default="notifications",
        description="notifications: only notification actions are held back; all: every "
        "action of the alerts it covers (run-deployment, pause-work-queue ...) too.",
    )


class RecurringSilence(BaseModel):
    """A maintenance window: silence what `match` selects in every window of `schedule`."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, description="Unique across all files.")
    match: NonEmptyMatchers = Field(
        description="Which alerts: a mapping as in triggers ({tags: warehouse}) or a list "
        "of matchers (label=value, label!=value, label=~regex, label!~regex)."
    )
    schedule: Recurrence = Field(description="When: cron, timezone and duration.")
    comment: str = Field(default="", description="Why, for whoever sees it silenced.")
    actions: Holds = _holds()

    def window(self, at: datetime) -> tuple[datetime, datetime] | None:
        """The window `at` falls in, if any."""
        return active_window(self.schedule, at)


class InhibitRule(BaseModel):
    """While an alert that `when` selects fires, mute the alerts `mute` selects that have
    the same values of the `equal` labels."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        default="",
        max_length=200,
        description="Unique across all files; default: made from the rule, so a changed "
        "rule is a new one.",
    )
    when: NonEmptyMatchers = Field(description="The alerts that inhibit (the cause).")
    mute: NonEmptyMatchers = Field(description="The alerts they mute (the symptoms).")
    equal: list[str] = Field(
        default_factory=list,
        description="Labels source and target must agree on, e.g. [prefect.resource.id].",
    )

    @model_validator(mode="after")
    def _named(self) -> Self:
        if not self.name:
            shape = [[str(m) for m in self.when], [str(m) for m in self.mute], self.equal]
            self.name = "inhibit-" + hashlib.sha256(orjson.dumps(shape)).hexdigest()[:12]
        return self


class AdHocSilence(BaseModel):
    """Body of POST /api/silences: a silence from now (or `starts`) for `for` or until
    `ends`, or until the alerts it covers have resolved."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    match: NonEmptyMatchers = Field(description="Which alerts (matchers, as in files).")
    starts: datetime | None = Field(default=None, description="Default: now.")
    ends: datetime | None = Field(default=None, description="When it ends.")
    for_: Duration | None = Field(
        default=None, alias="for", gt=timedelta(0), description="Or how long it lasts."
    )
    until_resolved: bool = Field(
        default=False, description="Or: until every alert it covers has resolved."
    )
    comment: str = Field(min_length=1, max_length=2000, description="Why: required.")
    created_by: str = Field(default="api", min_length=1, max_length=200, description="Who.")
    actions: Holds = _holds()

    @model_validator(mode="after")
    def _one_end(self) -> Self:
        given = [n for n, v in (("ends", self.ends), ("for", self.for_)) if v is not None]
        if self.until_resolved:
            given.append("until_resolved")
        if len(given) != 1:
            raise ValueError(
                "give exactly one of ends, for or until_resolved"
                + (f" (got {', '.join(given)})" if given else "")
            )
        if self.starts is not None and self.starts.tzinfo is None:
            raise ValueError("starts needs a timezone, e.g. 2026-12-06T02:00:00Z")
        if self.ends is not None and self.ends.tzinfo is None:
            raise ValueError("ends needs a timezone, e.g. 2026-12-06T05:00:00Z")
        return self


class _ByName(Kind[Any]):
    """A definition stored whole by name; a change makes workers reload."""

    model: type[BaseModel]

    def same(self, row: Any, item: Any) -> bool:
        return bool(self.model.model_validate(row.definition) == item)

    def values(self, item: Any) -> dict[str, Any]:
        return {"definition": item.model_dump(mode="json")}

    async def bump(self, conn: AsyncConnection) -> None:
        await bump_revision(conn)


class RecurringSilenceKind(_ByName):
    table = recurring_silences
    section = "silences"
    model = RecurringSilence
    raced = "a silence was created meanwhile by another apply; apply again"


class InhibitRuleKind(_ByName):
    table = inhibit_rules
    section = "inhibit"
    model = InhibitRule
    raced = "an inhibition rule was created meanwhile by another apply; apply again"


RECURRING_SILENCES = RecurringSilenceKind()
INHIBIT_RULES = InhibitRuleKind()
