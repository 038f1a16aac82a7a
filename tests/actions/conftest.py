"""Building one attempt of an action by hand, for executor tests."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from pydantic import TypeAdapter

from actions.connections import ConnectionBook
from actions.execution import Execution
from actions.model import Action
from actions.outbound import action_client
from actions.prefect_api import PrefectConnections
from actions.request import ActionRequest, AutomationRef, FiringState
from actions.templating import Templates
from events.model import Event, ReceivedEvent
from events.secrets import Secrets
from tests.actions.prefect_server import prefect_objects, prefect_server  # noqa: F401

ACTION: TypeAdapter[Action] = TypeAdapter(Action)


class Recorder:
    """Stands in for the engine's seams: events emitted and automations switched."""

    def __init__(self) -> None:
        self.emitted: list[Event] = []
        self.switched: list[tuple[str, bool]] = []

    async def emit(self, events: Sequence[Event]) -> None:
        self.emitted.extend(events)

    async def switch(self, ref: str, enabled: bool) -> tuple[str, str]:
        self.switched.append((ref, enabled))
        return ref, ref


class AllowAll:
    """A guard that lets every URL through (the SSRF guard has its own tests)."""

    async def check(self, url: str, field: str) -> None:
        return None


def request_for(
    action: Action | dict[str, Any],
    event: ReceivedEvent | dict[str, Any] | None = None,
    *,
    labels: dict[str, str] | None = None,
) -> ActionRequest:
    """An action request as a firing of automation `etl-watch` would make it."""
    if isinstance(event, dict):
        event = ReceivedEvent.model_validate(event)
    return ActionRequest(
        id=uuid.uuid4(),
        automation=AutomationRef(id=uuid.uuid4(), name="etl-watch"),
        firing_id=uuid.uuid4(),
        state=FiringState.triggered,
        action_index=0,
        action=ACTION.validate_python(action) if isinstance(action, dict) else action,
        triggered=datetime(2026, 11, 21, 9, 0, tzinfo=UTC),
        triggering_labels=labels or {},
        triggering_event=event,
    )


MakeExecution = Callable[..., Execution]


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    """The client workers use (guards are tested on their own, so private URLs are open)."""
    async with action_client(connections=16, timeout=10, allow_private=True) as client:
        yield client


@pytest.fixture
def make_execution(http: httpx.AsyncClient, recorder: Recorder) -> MakeExecution:
    """`make_execution(action, event=None, secrets={...}, guard=..., prefect=...)`; `prefect`
    is a ConnectionBook, or PrefectConnections for a book without stored connections."""

    def make(
        action: Action | dict[str, Any],
        event: ReceivedEvent | dict[str, Any] | None = None,
        *,
        secrets: dict[str, str] | None = None,
        guard: Any = None,
        prefect: Any = None,
        attempt: int = 1,
        labels: dict[str, str] | None = None,
    ) -> Execution:
        request = request_for(action, event, labels=labels)
        templates = Templates(Secrets(environ=secrets or {}))
        context: dict[str, Any] = {
            "automation": request.automation,
            "event": request.triggering_event,
            "events": [request.triggering_event] if request.triggering_event else [],
            "labels": request.triggering_labels,
            "firing": {"id": request.firing_id, "state": request.state.value},
        }
        return Execution(
            request=request,
            attempt=attempt,
            templates=templates,
            context=context,
            http=http,
            guard=guard or AllowAll(),
            emit=recorder.emit,
            automations=recorder,
            prefect=ConnectionBook(prefect) if isinstance(prefect, PrefectConnections) else prefect,
        )

    return make
