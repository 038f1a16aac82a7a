"""Actions that stay inside tripwire: do nothing, emit an event, pause or resume an
automation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import uuid5

from pydantic import ValidationError

from actions.causation import cause
from actions.errors import ActionFailed
from actions.execution import Execution, Executor, Outcome
from actions.lifecycle import NAMESPACE
from actions.model import DoNothing, EmitEvent, PauseAutomation, ResumeAutomation
from events.errors import InvalidEvent
from events.model import RESOURCE_ID, RESOURCE_NAME, Event


async def do_nothing(action: DoNothing, run: Execution) -> Outcome:
    """Nothing to do; the ledger and the executed event record the firing."""
    return Outcome("did nothing, as asked")


def _masked(value: Any, redact: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {_masked(k, redact): _masked(v, redact) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(item, redact) for item in value]
    return value


async def emit_event(action: EmitEvent, run: Execution) -> Outcome:
    """Emit the templated event, marked as caused by this automation (cascade depth)."""
    request = run.request
    related = [
        {str(k): str(v) for k, v in run.render_value(labels, f"related[{i}]").items()}
        for i, labels in enumerate(action.related)
    ]
    related.append(cause(request.automation.id, request.automation.name, request.depth))
    fields: dict[str, Any] = {
        # Stable across retries and redeliveries: the bus and the store keep it once.
        "id": uuid5(NAMESPACE, f"{request.id}:emit"),
        "event": run.render(action.event, "event"),
        "resource": {
            str(k): str(v) for k, v in run.render_value(action.resource, "resource").items()
        },
        "related": related,
        "payload": run.render_value(action.payload, "payload"),
    }
    # Secrets never reach events: a template that puts one
    # in the emitted event gets *** there, as in the ledger and the logs.
    fields = _masked(fields, run.templates.secrets.redact)
    try:
        event = Event.model_validate(fields)
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(str(p) for p in problem["loc"])
        raise ActionFailed(
            f"the rendered event is not valid: {where}: {problem['msg']}; "
            "check the emit-event templates"
        ) from None
    try:
        await run.emit([event])
    except InvalidEvent as exc:  # e.g. larger than the bus takes: retrying cannot help
        raise ActionFailed(f"the rendered event cannot be sent: {exc.message}") from None
    return Outcome(
        f"emitted {event.event} ({event.id})",
        target={RESOURCE_ID: f"prefect.event.{event.id}", RESOURCE_NAME: event.event},
    )


async def _switch(action: PauseAutomation | ResumeAutomation, run: Execution, on: bool) -> Outcome:
    if action.source == "inferred":
        ref = str(run.request.automation.id)
    else:
        ref = str(action.automation_id) if action.automation_id else str(action.automation)
    try:
        automation_id, name = await run.automations.switch(ref, on)
    except LookupError:
        raise ActionFailed(
            f"no automation {ref!r} to {'resume' if on else 'pause'}: check the name or id"
        ) from None
    verb = "resumed" if on else "paused"
    return Outcome(
        f"{verb} automation {name}",
        target={RESOURCE_ID: f"tripwire.automation.{automation_id}", RESOURCE_NAME: name},
    )


async def pause_automation(action: PauseAutomation, run: Execution) -> Outcome:
    """Pause this automation (inferred) or another one by name or id."""
    return await _switch(action, run, False)


async def resume_automation(action: ResumeAutomation, run: Execution) -> Outcome:
    """Resume this automation (inferred) or another one by name or id."""
    return await _switch(action, run, True)


BUILTIN_EXECUTORS: dict[str, Executor] = {
    "do-nothing": do_nothing,
    "emit-event": emit_event,
    "pause-automation": pause_automation,
    "resume-automation": resume_automation,
}
