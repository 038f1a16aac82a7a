"""What templates see: Prefect's context names, built from the action request and the
triggering event's labels. `actions.prefect_objects` puts the objects fetched from Prefect's
API over these when the templates name them."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final
from uuid import UUID

from actions.request import ActionRequest
from events.model import RESOURCE_ID, ReceivedEvent, Resource

PREFECT_KINDS: Final = (
    "flow-run",
    "task-run",
    "flow",
    "deployment",
    "work-queue",
    "work-pool",
    "concurrency-limit",
)
STATE_NAME: Final = "prefect.state-name"
STATE_TYPE: Final = "prefect.state-type"
STATE_MESSAGE: Final = "prefect.state-message"
STATE_TIMESTAMP: Final = "prefect.state-timestamp"


@dataclass(frozen=True)
class RunState:
    """A flow or task run's state as the event labels it: `name` (Late), `type`
    (SCHEDULED), and the `message` and `timestamp` when the event has them."""

    name: str | None
    type: str | None
    message: str | None = None
    timestamp: datetime | None = None


@dataclass(frozen=True)
class PrefectRef:
    """A Prefect object the event is about or relates to, read from its labels (no API call).

    `{{ flow_run.name }}`, `{{ flow_run.state.type }}`, `{{ deployment.id }}`,
    `{{ work_pool.labels['prefect.work-pool.type'] }}`.
    """

    id: str
    name: str | None
    labels: Mapping[str, str]
    state: RunState | None = None

    @property
    def kind(self) -> str:
        """The resource-id prefix, e.g. `prefect.flow-run`."""
        return self.labels.get(RESOURCE_ID, "").removesuffix(f".{self.id}")


class PrefectObject(Mapping[str, Any]):
    """A Prefect object as its API returns it, over the event's label view of it: fields
    from the API win; `labels` is the API object's labels with the event's on top; the
    run's `state` is the API's with the state the event observed on top, as Prefect does.

    `{{ flow_run.flow_id }}`, `{{ flow_run.state.timestamp }}`, `{{ work_queue.healthy }}`.
    Datetime fields are datetimes and run times timedeltas, as in Prefect's models.
    """

    __slots__ = ("_fields", "_kind")

    def __init__(self, kind: str, fields: Mapping[str, Any]) -> None:
        self._kind = kind
        self._fields = dict(fields)

    @classmethod
    def of(cls, api: Mapping[str, Any], ref: PrefectRef) -> PrefectObject:
        """The API's object `api` over the label view `ref` of the same object."""
        fields: dict[str, Any] = {"id": ref.id, "name": ref.name}
        fields.update(_typed(api))
        api_labels = api.get("labels")
        fields["labels"] = {**(api_labels if isinstance(api_labels, Mapping) else {}), **ref.labels}
        if ref.state is not None:
            observed = {k: v for k, v in vars(ref.state).items() if v is not None}
            api_state = fields.get("state")
            fields["state"] = {**(api_state if isinstance(api_state, Mapping) else {}), **observed}
        return cls(ref.kind, fields)

    def __getattr__(self, name: str) -> Any:
        try:
            return self._fields[name]
        except KeyError:
            raise AttributeError(name) from None

    def __getitem__(self, key: str) -> Any:
        return self._fields[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def __repr__(self) -> str:
        return f"PrefectObject({self._kind!r}, {self._fields!r})"


def kind_of(obj: PrefectObject) -> str:
    """The object's resource kind, e.g. `prefect.flow-run` (templates cannot read it)."""
    return obj._kind


# Prefect's models type these; the API's JSON has them as ISO text and seconds.
_DATETIMES: Final = frozenset(
    {
        "created",
        "updated",
        "timestamp",
        "expected_start_time",
        "next_scheduled_start_time",
        "start_time",
        "end_time",
        "last_polled",
        "scheduled_time",
        "cache_expiration",
        "pause_timeout",
    }
)
_DURATIONS: Final = frozenset(
    {"total_run_time", "estimated_run_time", "estimated_start_time_delta"}
)


def _typed(fields: Mapping[str, Any], depth: int = 0) -> dict[str, Any]:
    """`fields` with datetimes and durations typed, here and in `state`/`state_details`
    (parameters, job variables and the like stay as they are)."""
    typed: dict[str, Any] = {}
    for key, value in fields.items():
        if key in _DATETIMES and isinstance(value, str):
            value = _timestamp(value) or value
        elif key in _DURATIONS and isinstance(value, int | float):
            value = timedelta(seconds=value)
        elif key in ("state", "state_details") and isinstance(value, Mapping) and depth < 2:
            value = _typed(value, depth + 1)
        typed[key] = value
    return typed


@dataclass(frozen=True)
class FiringInfo:
    """The firing an action runs for: `{{ firing.state }}` is triggered or resolved."""

    id: UUID
    state: str
    triggered: datetime
    depth: int
    action_index: int


def prefect_ref(event: ReceivedEvent, kind: str) -> PrefectRef | None:
    """The `prefect.<kind>.<id>` resource: the event's own, or the related one in role `kind`."""
    for resource in (event.resource, *event.resources_in_role(kind)):
        if resource.id.startswith(f"prefect.{kind}."):
            return ref_of(resource, kind)
    return None


def ref_of(resource: Resource, kind: str) -> PrefectRef:
    """`resource` (a `prefect.<kind>.<id>`) as templates see it."""
    state = None
    if kind in ("flow-run", "task-run") and (STATE_NAME in resource or STATE_TYPE in resource):
        state = RunState(
            name=resource.get(STATE_NAME),
            type=resource.get(STATE_TYPE),
            message=resource.get(STATE_MESSAGE),
            timestamp=_timestamp(resource.get(STATE_TIMESTAMP)),
        )
    return PrefectRef(
        id=resource.id.removeprefix(f"prefect.{kind}."),
        name=resource.name,
        labels=dict(resource),
        state=state,
    )


def _timestamp(value: str | None) -> datetime | None:
    # A datetime, as in Prefect's State: it renders as `2026-11-21 09:00:00+00:00`.
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def template_context(
    request: ActionRequest, *, extra: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """What templates see: automation, event, events, labels, firing, firings (the one
    firing: a request is for one), and flow_run, flow, deployment, work_queue, work_pool,
    task_run, concurrency_limit (None unless the event is about one); `sla` for an SLA's
    actions; `notice` and `alerts` for a notification about alerts; `extra` is merged last."""
    event = request.triggering_event
    firing = FiringInfo(
        id=request.firing_id,
        state=request.state.value,
        triggered=request.triggered,
        depth=request.depth,
        action_index=request.action_index,
    )
    context: dict[str, Any] = {
        "automation": request.automation,
        "event": event,
        "events": [event] if event is not None else [],
        "labels": dict(request.triggering_labels),
        "firing": firing,
        "firings": [firing],
    }
    for kind in PREFECT_KINDS:
        context[kind.replace("-", "_")] = prefect_ref(event, kind) if event is not None else None
    if request.sla is not None:
        context["sla"] = request.sla
    if request.notice is not None:
        context["notice"] = request.notice
        context["alerts"] = request.notice.alerts
    if extra:
        context.update(extra)
    return context
