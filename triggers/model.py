"""Triggers, in Prefect's shape (so Prefect's exported automations load unchanged), plus
tripwire's `where` filter, human durations for `within`, and `for_each` and spans below
Prefect's 5-minute floor for metric triggers."""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Any, Literal
from uuid import UUID

import jmespath
import jmespath.exceptions
from jmespath.parser import ParsedResult
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    Tag,
    field_validator,
    model_validator,
)

from events.durations import Duration

LabelSpec = dict[str, str | list[str]]
MIN_PROACTIVE_WITHIN = timedelta(seconds=10)
MIN_METRIC_RANGE = timedelta(seconds=10)  # Prefect's floor is 5 minutes; tripwire's is one tick


class Posture(StrEnum):
    """Reactive triggers fire on events that happen; Proactive ones on events that don't."""

    Reactive = "Reactive"
    Proactive = "Proactive"


class _Trigger(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: UUID | None = Field(default=None, description="Prefect's trigger id, kept when given.")


class EventTrigger(_Trigger):
    """Fires when `threshold` matching events arrive within `within` (Reactive), or when
    fewer than `threshold` arrive within `within` after an `after` event (Proactive)."""

    type: Literal["event"] = "event"
    match: LabelSpec = Field(
        default_factory=dict, description="Labels the event's resource must have (ANDed)."
    )
    match_related: list[LabelSpec] = Field(
        default_factory=list,
        description="Each spec must be satisfied by some related resource (one spec or a list).",
    )
    after: list[str] = Field(
        default_factory=list, description="Event names (globs) that arm the trigger."
    )
    expect: list[str] = Field(
        default_factory=list, description="Event names (globs) counted; empty means any event."
    )
    for_each: list[str] = Field(
        default_factory=list,
        description="Labels that split state per value, e.g. prefect.resource.id or "
        "related:flow:prefect.resource.name.",
    )
    posture: Posture = Field(default=Posture.Reactive, description="Reactive or Proactive.")
    threshold: int = Field(
        default=1, ge=1, le=1_000_000_000, description="How many events make it fire."
    )
    within: Duration = Field(
        default=timedelta(0), description="The window, in seconds or like 10m or 2h."
    )
    where: str | None = Field(
        default=None,
        description="tripwire: a JMESPath expression over the whole event that must be true, "
        "e.g. payload.rows < `100`.",
    )
    _where: ParsedResult | None = PrivateAttr(default=None)

    @field_validator("match_related", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return one_or_many(value)

    @field_validator("within")
    @classmethod
    def _not_negative(cls, value: timedelta) -> timedelta:
        if value < timedelta(0):
            raise ValueError("must not be negative")
        return value

    @field_validator("where")
    @classmethod
    def _where_compiles(cls, value: str | None) -> str | None:
        if value is not None:
            compile_where(value)
        return value

    @model_validator(mode="after")
    def _check(self) -> EventTrigger:
        if self.posture is Posture.Proactive and self.within < MIN_PROACTIVE_WITHIN:
            raise ValueError(
                "a Proactive trigger needs `within` of at least 10s: how long to wait for "
                "the expected events"
            )
        if self.where is not None:
            self._where = compile_where(self.where)
        return self

    @property
    def where_expression(self) -> ParsedResult | None:
        """The compiled `where`, or None."""
        return self._where


def one_or_many(value: Any) -> Any:
    """`match_related` as a list: Prefect accepts a single spec or a list of them."""
    return [value] if isinstance(value, dict) else value


def compile_where(expression: str) -> ParsedResult:
    """A `where` expression compiled, or a ValueError pointing at the position."""
    try:
        return jmespath.compile(expression)
    except jmespath.exceptions.ParseError as exc:
        pointer = " " * exc.lex_position + "^"
        raise ValueError(
            f"is not a valid JMESPath expression at position {exc.lex_position} "
            f"({exc.msg}):\n  {expression}\n  {pointer}"
        ) from None
    except jmespath.exceptions.JMESPathError as exc:
        raise ValueError(f"is not a valid JMESPath expression ({exc})") from None


class MetricName(StrEnum):
    """Prefect's flow-run metrics (see `triggers.metrics` for how each is computed)."""

    lateness = "lateness"
    duration = "duration"
    successes = "successes"


class MetricOperator(StrEnum):
    """How the metric's value is compared with the threshold."""

    lt = "<"
    lte = "<="
    gt = ">"
    gte = ">="


class MetricQuery(BaseModel):
    """Prefect's `MetricTriggerQuery`: which metric, over how long, against what."""

    model_config = ConfigDict(extra="forbid")

    name: MetricName = Field(description="lateness, duration or successes.")
    threshold: float = Field(description="The value the metric is compared with.")
    operator: MetricOperator = Field(description="<, <=, > or >=: metric OPERATOR threshold.")
    range: Duration = Field(
        default=timedelta(seconds=300),
        description="How far back the metric looks, at least 10s (Prefect: at least 300).",
    )
    firing_for: Duration = Field(
        default=timedelta(seconds=300),
        description="How long the condition must hold (or stop holding) without a break "
        "before the trigger fires (or resolves); 0 means at the first evaluation.",
    )

    @field_validator("range")
    @classmethod
    def _long_enough(cls, value: timedelta) -> timedelta:
        if value < MIN_METRIC_RANGE:
            raise ValueError("must be at least 10s: the metric is evaluated every 10 seconds")
        return value

    @field_validator("firing_for")
    @classmethod
    def _not_negative(cls, value: timedelta) -> timedelta:
        if value < timedelta(0):
            raise ValueError("must not be negative")
        return value


class MetricTrigger(_Trigger):
    """Fires when a flow-run metric over `metric.range` has compared true with the
    threshold for `metric.firing_for`, and resolves when it has compared false as long."""

    type: Literal["metric"] = "metric"
    posture: Literal["Metric"] = Field(
        default="Metric", description="Always Metric: evaluated periodically."
    )
    match: LabelSpec = Field(
        default_factory=dict, description="Labels the flow run must have (ANDed)."
    )
    match_related: list[LabelSpec] = Field(
        default_factory=list,
        description="Each spec must be satisfied by some related resource (one spec or a list).",
    )
    metric: MetricQuery = Field(description="The metric, its threshold and its spans.")
    for_each: list[str] = Field(
        default_factory=list,
        description="tripwire: a metric per value of these labels, e.g. "
        "related:deployment:prefect.resource.id (as in event triggers).",
    )

    @field_validator("match_related", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return one_or_many(value)


class CompoundTrigger(_Trigger):
    """Fires when `require` of its triggers (any, all, or a number) fired within `within`."""

    type: Literal["compound"] = "compound"
    triggers: list[Trigger] = Field(min_length=1, description="The child triggers.")
    require: Literal["any", "all"] | int = Field(description="any, all, or how many.")
    within: Duration | None = Field(default=None, description="Window for the children.")

    @model_validator(mode="after")
    def _require_fits(self) -> CompoundTrigger:
        if isinstance(self.require, int) and not 1 <= self.require <= len(self.triggers):
            raise ValueError(
                f"require is {self.require} but there are {len(self.triggers)} triggers; "
                "use any, all, or a number from 1 to the number of triggers"
            )
        return self


class SequenceTrigger(_Trigger):
    """Fires when its triggers fire in order, all within `within`."""

    type: Literal["sequence"] = "sequence"
    triggers: list[Trigger] = Field(min_length=1, description="The child triggers, in order.")
    within: Duration | None = Field(default=None, description="Window for the whole sequence.")


def trigger_kind(value: Any) -> str:
    """A trigger's `type`, told as Prefect tells it when the field is left out: triggers
    with `require` are compound, with `triggers` alone a sequence, with posture Metric a
    metric trigger, and any other an event trigger (hand-written Prefect files omit it)."""
    if not isinstance(value, dict):
        return str(getattr(value, "type", "event"))
    if "type" in value:
        return str(value["type"])
    if "triggers" in value:
        return "compound" if "require" in value else "sequence"
    return "metric" if value.get("posture") == "Metric" else "event"


Trigger = Annotated[
    Annotated[EventTrigger, Tag("event")]
    | Annotated[MetricTrigger, Tag("metric")]
    | Annotated[CompoundTrigger, Tag("compound")]
    | Annotated[SequenceTrigger, Tag("sequence")],
    Discriminator(trigger_kind),
]
ResourceTrigger = EventTrigger | MetricTrigger  # the triggers that match resources

CompoundTrigger.model_rebuild()
SequenceTrigger.model_rebuild()
