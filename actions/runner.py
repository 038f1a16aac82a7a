"""Runs action requests: claim in the ledger, execute with a time limit, record the
outcome, emit the lifecycle events, and say when (if ever) the request should come back.

Retries go back through JetStream (a nak with the backoff as delay), so a retry survives
the worker that scheduled it; the ledger says when it is due and how many attempts ran.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

import httpx
from nats.aio.msg import Msg
from pydantic import ValidationError

from actions.batching import GroupCommit
from actions.connections import ConnectionBook
from actions.context import template_context
from actions.errors import ActionFailed, ActionRetry
from actions.execution import (
    AutomationSwitch,
    Emit,
    Execution,
    Executor,
    Hold,
    Outcome,
    UrlGuard,
)
from actions.http import transport_error
from actions.ledger import Claim, Ledger, Record, Status
from actions.lifecycle import lifecycle_event
from actions.model import CHECKED
from actions.prefect_objects import prefect_context
from actions.request import ActionRequest
from actions.templating import Templates
from events import clock
from events.errors import BusUnavailable, EventsError
from events.metrics import ACTION_ATTEMPT_SECONDS, ACTIONS
from events.model import Event

log = logging.getLogger("tripwire.actions")

RECORD_TRIES = 3  # an outcome is written again on a database error, within the claim's margin


@dataclass(frozen=True)
class RetryPolicy:
    """Defaults for actions that do not set `retries` / `retry_delay` themselves."""

    retries: int = 3
    retry_delay: timedelta = timedelta(seconds=2)
    max_retry_delay: timedelta = timedelta(minutes=10)
    attempt_timeout: timedelta = timedelta(seconds=30)

    @property
    def lease(self) -> timedelta:
        """How long a claim holds: an attempt's time limit plus room to record it."""
        return self.attempt_timeout + timedelta(seconds=5)

    def attempts(self, request: ActionRequest) -> int:
        retries = request.action.retries
        return 1 + (self.retries if retries is None else retries)

    def delay(self, request: ActionRequest, attempt: int, retry_after: float | None) -> float:
        """Exponential backoff with jitter, or the target's own Retry-After."""
        if retry_after is not None:  # capped: a week-long Retry-After would outlive the stream
            return min(max(retry_after, 0.05), self.max_retry_delay.total_seconds())
        base = request.action.retry_delay or self.retry_delay
        backoff = min(
            base.total_seconds() * 2 ** (attempt - 1), self.max_retry_delay.total_seconds()
        )
        return float(backoff * random.uniform(0.5, 1.0))  # spread one outage's retries


@dataclass(frozen=True)
class _Failure:
    reason: str
    status_code: int | None
    retryable: bool
    retry_after: float | None = None


class ActionRunner:
    """Executes action requests; `handle` is the JetStream message handler."""

    def __init__(
        self,
        *,
        ledger: Ledger,
        executors: Mapping[str, Executor],
        templates: Templates,
        http: httpx.AsyncClient,
        guard: UrlGuard,
        emit: Emit,
        automations: AutomationSwitch,
        prefect: ConnectionBook | None = None,
        policy: RetryPolicy | None = None,
        hold: Hold | None = None,
    ) -> None:
        self.ledger = ledger
        self.executors = executors
        self.templates = templates
        self.http = http
        self.guard = guard
        self.emit = emit
        self.automations = automations
        self.prefect = prefect
        self.policy = policy or RetryPolicy()
        self.hold = hold
        # Claims and outcomes of concurrent actions share transactions (group commit).
        lease = self.policy.lease
        self._claims: GroupCommit[ActionRequest, Claim] = GroupCommit(
            lambda requests: ledger.claim_many(requests, lease)
        )
        self._records: GroupCommit[Record, bool] = GroupCommit(ledger.record_many)

    async def handle(self, message: Msg) -> None:
        """Run one request from the actions stream; ack it, or nak it with a delay."""
        try:
            request = ActionRequest.model_validate_json(message.data, context={CHECKED: True})
        except ValidationError as exc:
            # Nothing can run it; keep it out of the way instead of redelivering forever.
            log.error("dropping an action request that is not valid: %s", exc)
            await message.term()
            return
        again_in = await self.run(request)
        if again_in is None:
            await message.ack()
        else:
            await message.nak(delay=again_in)

    async def run(self, request: ActionRequest) -> float | None:
        """One attempt if one is due; returns None when done, else seconds until next."""
        claim = await self._claims.submit(request)
        if not claim.granted:
            if claim.entry is not None:  # finished: its events may not have been published
                triggered = lifecycle_event(request, "triggered", round=claim.round)
                await self.emit([triggered, self._finished_event(request, claim)])
                return None
            return claim.wait
        # The claim's lease runs from now: the attempt must end in time to be recorded.
        deadline = asyncio.get_running_loop().time() + self.policy.attempt_timeout.total_seconds()
        unannounced: list[Event] = []
        if claim.attempts == 1:
            triggered = lifecycle_event(request, "triggered", round=claim.round)
            try:
                await self.emit([triggered])
            except EventsError as exc:
                # The action matters more than its announcement: go on, and send it with
                # the outcome (same id, stored once).
                log.warning("action %s: announcing it failed (%s); running it", request.id, exc)
                unannounced.append(triggered)
        elif claim.interrupted:
            log.warning(
                "action %s (%s) was interrupted during attempt %d; running it again",
                request.id,
                request.action.type,
                claim.attempts - 1,
            )
        started = time.perf_counter()
        outcome: Outcome | _Failure = await self._attempt(request, claim, deadline)
        elapsed = (time.perf_counter() - started) * 1000
        kind = request.action.type
        ACTION_ATTEMPT_SECONDS.labels(kind).observe(elapsed / 1000)
        if isinstance(outcome, Outcome):
            ACTIONS.labels(kind, "executed").inc()
            await self._succeeded(request, claim, outcome, elapsed, unannounced)
            return None
        if outcome.retryable and claim.attempts < self.policy.attempts(request):
            ACTIONS.labels(kind, "retried").inc()
            delay = self.policy.delay(request, claim.attempts, outcome.retry_after)
            landed = await self._record(
                Record(
                    request.id,
                    Status.retrying,
                    attempt=claim.attempts,
                    error=outcome.reason,
                    status_code=outcome.status_code,
                    duration_ms=elapsed,
                    next_attempt=clock.now() + timedelta(seconds=delay),
                )
            )
            if unannounced:
                await self.emit(unannounced)
            if not landed:
                return None
            log.info(
                "action %s (%s) attempt %d failed, retrying in %.1fs: %s",
                request.id,
                request.action.type,
                claim.attempts,
                delay,
                outcome.reason,
            )
            return delay
        ACTIONS.labels(kind, "failed").inc()
        await self._failed(request, claim, outcome, elapsed, unannounced)
        return None

    async def _record(self, record: Record) -> bool:
        """Write an outcome, trying again on a database error while the claim still holds
        (an outcome lost would have the action run again). False when the claim was lost:
        another worker took the request over, and its outcome stands."""
        for attempt in range(RECORD_TRIES):
            try:
                landed = await self._records.submit(record)
                break
            except Exception as exc:
                if attempt == RECORD_TRIES - 1:
                    raise
                log.warning("recording action %s failed (%s); trying again", record.key, exc)
                await asyncio.sleep(0.5 * (attempt + 1))
        if not landed:
            log.warning(
                "action %s lost its claim during attempt %s; the worker that took it over "
                "records the outcome",
                record.key,
                record.attempt,
            )
        return landed

    async def _attempt(
        self, request: ActionRequest, claim: Claim, deadline: float
    ) -> Outcome | _Failure:
        executor = self.executors.get(request.action.type)
        if executor is None:
            return _Failure(f"no executor for action type {request.action.type}", None, False)
        held = await self._held(request)
        if held is not None:
            return Outcome(summary=f"not run: {held}", details={"held": held})
        context = template_context(request)
        run = Execution(
            request=request,
            attempt=claim.attempts,
            templates=self.templates,
            context=context,
            http=self.http,
            guard=self.guard,
            emit=self.emit,
            automations=self.automations,
            prefect=self.prefect,
            deadline=deadline,
        )
        redact = self.templates.secrets.redact
        limit = self.policy.attempt_timeout.total_seconds()
        try:
            async with asyncio.timeout_at(deadline):
                # Only what the templates name, read within the attempt's time limit.
                context.update(
                    await prefect_context(request, self.prefect, self.templates, self.http)
                )
                return await executor(request.action, run)
        except ActionFailed as exc:
            return _Failure(redact(exc.message), exc.status_code, retryable=False)
        except ActionRetry as exc:
            return _Failure(redact(exc.message), exc.status_code, True, exc.retry_after)
        except httpx.TransportError as exc:
            failure = transport_error(exc, request.action.type)
            return _Failure(redact(failure.message), None, retryable=True)
        except TimeoutError:
            return _Failure(f"took longer than {limit:g}s (the attempt limit)", None, True)
        except BusUnavailable as exc:  # emit-event while NATS is away: an outage, not a bug
            return _Failure(redact(str(exc)), None, retryable=True)
        except Exception as exc:  # a bug in an executor: keep the worker, record it
            reason = redact(f"{type(exc).__name__}: {exc}")
            # No traceback: its frames' text may hold a rendered secret.
            log.error("action %s (%s) raised %s", request.id, request.action.type, reason)
            return _Failure(reason, None, retryable=True)

    async def _held(self, request: ActionRequest) -> str | None:
        """Why a silence holds the request back, if one does. When that cannot be told
        (the database is away), the action runs: a message too many beats one lost."""
        if self.hold is None:
            return None
        try:
            return await self.hold(request)
        except Exception as exc:
            log.warning("action %s: could not check silences (%s); running it", request.id, exc)
            return None

    async def _succeeded(
        self,
        request: ActionRequest,
        claim: Claim,
        outcome: Outcome,
        elapsed: float,
        unannounced: list[Event],
    ) -> None:
        redact = self.templates.secrets.redact
        summary = redact(outcome.summary)
        landed = await self._record(
            Record(
                request.id,
                Status.succeeded,
                attempt=claim.attempts,
                result=summary,
                status_code=outcome.status_code,
                duration_ms=elapsed,
            )
        )
        if not landed:
            return
        await self.emit(
            [
                *unannounced,
                lifecycle_event(
                    request,
                    "executed",
                    round=claim.round,
                    payload={
                        "attempt": claim.attempts,
                        "status_code": outcome.status_code,
                        "result": summary,
                        "duration_ms": round(elapsed, 1),
                    },
                    target=dict(outcome.target) if outcome.target else None,
                ),
            ]
        )

    async def _failed(
        self,
        request: ActionRequest,
        claim: Claim,
        failure: _Failure,
        elapsed: float,
        unannounced: list[Event],
    ) -> None:
        landed = await self._record(
            Record(
                request.id,
                Status.failed,
                attempt=claim.attempts,
                error=failure.reason,
                status_code=failure.status_code,
                duration_ms=elapsed,
            )
        )
        if not landed:
            return
        log.warning(
            "action %s (%s) of %s failed after %d attempt(s): %s",
            request.id,
            request.action.type,
            request.automation.name,
            claim.attempts,
            failure.reason,
        )
        await self.emit(
            [
                *unannounced,
                lifecycle_event(
                    request,
                    "failed",
                    round=claim.round,
                    payload={
                        "attempt": claim.attempts,
                        "status_code": failure.status_code,
                        "reason": failure.reason,
                        "retryable": failure.retryable,
                    },
                ),
            ]
        )

    def _finished_event(self, request: ActionRequest, claim: Claim) -> Event:
        entry = claim.entry or {}
        ok = claim.status is Status.succeeded
        payload = {
            "attempt": entry.get("attempts"),
            "status_code": entry.get("status_code"),
            ("result" if ok else "reason"): entry.get("result" if ok else "last_error"),
        }
        what = "executed" if ok else "failed"
        return lifecycle_event(request, what, round=claim.round, payload=payload)
