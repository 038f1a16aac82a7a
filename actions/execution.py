"""What an executor gets besides its action, and what it gives back.

An executor is `async def run(action, run: Execution) -> Outcome`: it raises ActionFailed
for a permanent failure and ActionRetry (or lets an httpx transport error through) for a
transient one; the runner does the retries, the ledger and the lifecycle events.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import httpx

from actions.request import ActionRequest
from actions.templating import Templates
from events.model import Event

if TYPE_CHECKING:
    from actions.connections import ConnectionBook


@dataclass(frozen=True)
class Outcome:
    """A successful action: a one-line summary for the ledger and the executed event."""

    summary: str
    status_code: int | None = None
    target: Mapping[str, str] | None = None  # the resource acted on, as event labels
    details: Mapping[str, Any] = field(default_factory=dict)


class AutomationSwitch(Protocol):
    """Pauses and resumes automations (the engine passes its automation store)."""

    async def switch(self, ref: str, enabled: bool) -> tuple[str, str]:
        """Set `enabled` on the automation named or identified by `ref`; returns its id and
        name. Raises LookupError when there is none."""
        ...


class UrlGuard(Protocol):
    """Refuses URLs an automation must not call (the SSRF guard)."""

    async def check(self, url: str, field: str) -> None: ...


Emit = Callable[[Sequence[Event]], Awaitable[None]]
# Why a request is held back (a silence), or None to run it; asked before each attempt.
Hold = Callable[[ActionRequest], Awaitable[str | None]]
# `async def run(action, run: Execution) -> Outcome`, one per action type.
Executor = Callable[[Any, "Execution"], Awaitable["Outcome"]]


@dataclass
class Execution:
    """One attempt of one action request."""

    request: ActionRequest
    attempt: int
    templates: Templates
    context: Mapping[str, Any]
    http: httpx.AsyncClient
    guard: UrlGuard
    emit: Emit
    automations: AutomationSwitch
    prefect: ConnectionBook | None = None  # set by the runner
    deadline: float | None = None  # event-loop time by which the attempt must end

    def time_left(self) -> float | None:
        """Seconds until the attempt's deadline, when it has one."""
        if self.deadline is None:
            return None
        return self.deadline - asyncio.get_running_loop().time()

    def render(self, source: str, field: str) -> str:
        """Render one template field of the action."""
        return self.templates.render(source, self.context, field)

    def render_value(self, value: Any, field: str) -> Any:
        """Render every string inside `value`, keeping JSON types."""
        return self.templates.render_value(value, self.context, field)
