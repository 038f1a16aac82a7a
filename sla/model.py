"""SLA definitions, a discriminated union on `kind`: a deadline on a calendar, a duration
from a start event, or freshness (an event at least every so often).

Events are selected as triggers select them (`match`, `match_related`, `where`,
`for_each`, `expect` globs), and the actions are the automations' actions.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal, Self

from jmespath.parser import ParsedResult
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from actions.model import Action
from events.durations import Duration
from sla.calendar import Calendar, checked_cron, checked_zone
from triggers.automation import Severity
from triggers.model import LabelSpec, compile_where, one_or_many

CatchUp = Literal["fire", "skip"]
FreshnessStart = Literal["apply", "first_event"]
PrefectSeverity = Literal["minor", "low", "moderate", "high", "critical"]
PrefectSLAType = Literal["time-to-completion", "lateness", "frequency"]


def _expect() -> Any:
    return Field(min_length=1, description="Event names (globs) expected, e.g. dbt.model.*.")


def _longer_than_zero(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError("must be longer than 0")
    return value


class WarnBefore(BaseModel):
    """An early warning: `actions` run `before` the SLA would be missed, if still unmet."""

    model_config = ConfigDict(extra="forbid")

    before: Duration = Field(
        description="Lead time before the miss (deadline, end of `within` or of `every`), "
        "in seconds or like 10m or 2h."
    )
    actions: list[Action] = Field(min_length=1, description="Run as the early warning.")

    @field_validator("before")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        return _longer_than_zero(value)


class PrefectOrigin(BaseModel):
    """The Prefect deployment SLA an SLA was made from (sla.prefect_slas): which
    deployment owns it, and the SLA as Prefect names it."""

    model_config = ConfigDict(extra="forbid")

    deployment: str = Field(
        min_length=1,
        description="The owning deployment: flow-name/deployment-name, or the "
        "deployment's name alone (as in prefect.yaml).",
    )
    type: PrefectSLAType = Field(description="time-to-completion, lateness or frequency.")
    name: str = Field(min_length=1, description="The SLA's name, unique per deployment.")
    severity: PrefectSeverity = Field(description="Prefect's severity, as declared.")


class _SLA(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, description="Unique across all files.")
    description: str = Field(default="", description="What it promises, and to whom.")
    severity: Severity = Field(default="warning", description="info, warning or critical.")
    enabled: bool = Field(default=True, description="A disabled SLA is never evaluated.")
    for_each: list[str] = Field(
        default_factory=list,
        description="Labels that split the SLA per value (as in triggers), e.g. "
        "prefect.resource.id.",
    )
    match: LabelSpec = Field(
        default_factory=dict, description="Labels the event's resource must have (ANDed)."
    )
    match_related: list[LabelSpec] = Field(
        default_factory=list,
        description="Each spec must be satisfied by some related resource (one spec or a list).",
    )
    where: str | None = Field(
        default=None,
        description="A JMESPath expression over the whole event that must be true.",
    )
    labels: dict[str, str] = Field(
        default_factory=dict,
        description="Labels its alerts carry (besides the keyed resource's, the key's, "
        "sla, severity and sla_state, which win).",
    )
    prefect: PrefectOrigin | None = Field(
        default=None,
        description="Set on the SLAs a deployments: section (or a prefect.yaml) makes from "
        "Prefect's deployment SLAs; their misses also emit prefect.sla.violation.",
    )
    actions: list[Action] = Field(default_factory=list, description="Run on a miss.")
    downstream: list[str] = Field(
        default_factory=list,
        description="tripwire: what depends on what it promises (dataflows, dashboards, "
        "models), named in its alerts beside what Prefect's asset lineage shows.",
    )
    actions_on_resolve: list[Action] = Field(
        default_factory=list, description="Run when a missed SLA recovers."
    )
    warn_before: WarnBefore | None = Field(
        default=None, description="An early warning before a miss."
    )
    catch_up: CatchUp = Field(
        default="fire",
        description="Misses that fell while tripwire was down: fire (once each, marked "
        "late) or skip.",
    )
    emit_met: bool = Field(
        default=False,
        description="Also emit an event whenever the SLA is met; without it, only when it "
        "is met after its early warning (so the at-risk alert resolves).",
    )
    _where: ParsedResult | None = PrivateAttr(default=None)

    @field_validator("match_related", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return one_or_many(value)

    @field_validator("where")
    @classmethod
    def _where_compiles(cls, value: str | None) -> str | None:
        if value is not None:
            compile_where(value)
        return value

    @model_validator(mode="after")
    def _compile(self) -> Self:
        if self.where is not None:
            self._where = compile_where(self.where)
        return self

    @property
    def where_expression(self) -> ParsedResult | None:
        """The compiled `where`, or None."""
        return self._where

    def _warn_shorter_than(self, span: timedelta, field: str) -> None:
        if self.warn_before is not None and self.warn_before.before >= span:
            raise ValueError(
                f"warn_before.before ({self.warn_before.before}) must be shorter than "
                f"{field} ({span}), or the warning would come before the clock starts"
            )


class DeadlineCalendar(BaseModel):
    """When deadlines fall: a cron expression read in a time zone."""

    model_config = ConfigDict(extra="forbid")

    cron: str = Field(
        description="5 fields: minute hour day-of-month month day-of-week, days of the week "
        "as names, e.g. 0 9 * * MON-FRI."
    )
    timezone: str = Field(default="UTC", description="IANA time zone, e.g. Europe/Berlin.")

    @field_validator("cron")
    @classmethod
    def _cron_parses(cls, value: str) -> str:
        fields = value.split()
        weekday = fields[4] if len(fields) == 5 else ""
        if any(c.isdigit() for c in weekday):
            # APScheduler 3 counts weekdays from Monday = 0, cron from Sunday = 0.
            raise ValueError(
                f"names days of the week by number ({weekday}); use names such as MON-FRI "
                "or SUN, since numbers mean different days to cron and to the scheduler"
            )
        checked_cron(value, "0 9 * * MON-FRI")
        return value

    @field_validator("timezone")
    @classmethod
    def _zone_exists(cls, value: str) -> str:
        return checked_zone(value)


class DeadlineSLA(_SLA):
    """`expect` events must occur by each deadline of a calendar, in the window from the
    previous deadline to this one."""

    kind: Literal["deadline"] = Field(description="deadline")
    expect: list[str] = _expect()
    deadline: DeadlineCalendar = Field(description="When the deadlines fall.")
    skip_dates: list[date] = Field(
        default_factory=list,
        description="Dates (ISO, in the calendar's time zone) with no deadline, e.g. holidays.",
    )
    grace: Duration = Field(
        default=timedelta(0), description="How late the events may still come, e.g. 5m."
    )

    @field_validator("grace")
    @classmethod
    def _not_negative(cls, value: timedelta) -> timedelta:
        if value < timedelta(0):
            raise ValueError("must not be negative")
        return value

    @property
    def calendar(self) -> Calendar:
        """The deadlines, with `skip_dates` left out."""
        return Calendar(self.deadline.cron, self.deadline.timezone, self.skip_dates)

    def due(self, deadline: datetime) -> datetime:
        """When a deadline is missed: the deadline plus `grace`."""
        return deadline + self.grace


class DurationSLA(_SLA):
    """After a `start` event, an `expect` event must follow within `within`, per key."""

    kind: Literal["duration"] = Field(description="duration")
    start: list[str] = Field(min_length=1, description="Event names (globs) that start the clock.")
    expect: list[str] = _expect()
    within: Duration = Field(description="How long the expected event may take, e.g. 2h.")

    @field_validator("within")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        return _longer_than_zero(value)

    @model_validator(mode="after")
    def _warning_fits(self) -> Self:
        self._warn_shorter_than(self.within, "within")
        return self


class FreshnessSLA(_SLA):
    """At least one `expect` event every `every`, per key."""

    kind: Literal["freshness"] = Field(description="freshness")
    expect: list[str] = _expect()
    every: Duration = Field(description="The longest allowed gap between events, e.g. 15m.")
    start: FreshnessStart = Field(
        default="first_event",
        description="When a key's clock starts: at its first event (first_event) or when the "
        "SLA is applied (apply).",
    )

    @field_validator("every")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        return _longer_than_zero(value)

    @model_validator(mode="after")
    def _warning_fits(self) -> Self:
        self._warn_shorter_than(self.every, "every")
        return self


SLA = Annotated[DeadlineSLA | DurationSLA | FreshnessSLA, Field(discriminator="kind")]
