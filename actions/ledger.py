"""The action ledger: claims, outcomes and the dead letter, one row per action request.

A worker claims a request before it acts: the claim succeeds for a new request, a
request due for a retry, or one whose last claim lapsed (its worker died mid-action).
Finished requests (succeeded, or failed for good) are never claimed again, which is what
makes a redelivered request act at most once after success.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any
from uuid import UUID

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncEngine

from actions.request import ActionRequest
from actions.tables import action_ledger
from events import clock


class Status(StrEnum):
    """Where a request stands."""

    pending = "pending"
    running = "running"
    retrying = "retrying"
    succeeded = "succeeded"
    failed = "failed"  # permanent, or out of attempts: the dead letter


FINISHED = frozenset({Status.succeeded, Status.failed})


@dataclass(frozen=True)
class Claim:
    """The answer to "may I run this request now?"."""

    granted: bool
    status: Status
    attempts: int = 0  # the attempt about to run, when granted
    round: int = 0
    interrupted: bool = False  # the previous attempt's worker died mid-action
    wait: float = 0.0  # when not granted and not finished: seconds until it may be
    entry: dict[str, Any] | None = None  # the row, when finished


class Ledger:
    """Reads and writes `action_ledger`."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        module = postgresql if engine.dialect.name == "postgresql" else sqlite
        self._insert = module.insert

    async def claim(self, request: ActionRequest, lease: timedelta) -> Claim:
        """Record the request if new and claim it for one attempt when it may run now."""
        now = clock.now()
        key = str(request.id)
        table = action_ledger
        async with self.engine.begin() as conn:
            await conn.execute(
                self._insert(table)
                .values(
                    id=key,
                    automation_id=str(request.automation.id),
                    automation_name=request.automation.name,
                    firing_id=str(request.firing_id),
                    action_index=request.action_index,
                    action_type=request.action.type,
                    status=Status.pending,
                    attempts=0,
                    round=0,
                    request=request.model_dump_json(),
                    created=now,
                )
                .on_conflict_do_nothing(index_elements=["id"])
            )
            before = (await conn.execute(select(table).where(table.c.id == key))).mappings().one()
            claimable = or_(
                table.c.status == Status.pending,
                and_(table.c.status == Status.retrying, table.c.next_attempt <= now),
                and_(table.c.status == Status.running, table.c.lease_until <= now),
            )
            claimed = await conn.execute(
                update(table)
                .where(table.c.id == key, claimable)
                .values(
                    status=Status.running,
                    attempts=table.c.attempts + 1,
                    lease_until=now + lease,
                    started=func.coalesce(table.c.started, now),
                )
            )
        status = Status(before["status"])
        if claimed.rowcount == 1:
            return Claim(
                True,
                Status.running,
                attempts=before["attempts"] + 1,
                round=before["round"],
                interrupted=status is Status.running,
            )
        if status in FINISHED:
            return Claim(False, status, before["attempts"], before["round"], entry=_entry(before))
        until = before["lease_until"] if status is Status.running else before["next_attempt"]
        wait = (_aware(until) - now).total_seconds() if until is not None else 1.0
        return Claim(False, status, before["attempts"], before["round"], wait=max(wait, 0.1))

    async def succeed(
        self, key: UUID, *, result: str, status_code: int | None, duration_ms: float
    ) -> None:
        """The attempt worked."""
        await self._finish(
            key,
            status=Status.succeeded,
            result=result,
            status_code=status_code,
            duration_ms=duration_ms,
        )

    async def fail(
        self, key: UUID, *, error: str, status_code: int | None, duration_ms: float
    ) -> None:
        """Failed for good: a permanent failure, or the last attempt. The dead letter."""
        await self._finish(
            key,
            status=Status.failed,
            last_error=error,
            status_code=status_code,
            duration_ms=duration_ms,
        )

    async def retry_at(
        self,
        key: UUID,
        when: datetime,
        *,
        error: str,
        status_code: int | None,
        duration_ms: float,
    ) -> None:
        """The attempt failed in a way that may pass; the next one is due at `when`."""
        async with self.engine.begin() as conn:
            await conn.execute(
                update(action_ledger)
                .where(action_ledger.c.id == str(key))
                .values(
                    status=Status.retrying,
                    next_attempt=when,
                    lease_until=None,
                    last_error=error,
                    status_code=status_code,
                    duration_ms=duration_ms,
                )
            )

    async def _finish(self, key: UUID, **values: Any) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                update(action_ledger)
                .where(action_ledger.c.id == str(key))
                .values(lease_until=None, next_attempt=None, finished=clock.now(), **values)
            )

    async def rerun(self, key: str) -> ActionRequest:
        """Reset a failed request for another round of attempts (`tripwire actions retry`).

        Raises LookupError for an unknown id and ValueError when it is running or done.
        """
        async with self.engine.begin() as conn:
            row = (
                (await conn.execute(select(action_ledger).where(action_ledger.c.id == key)))
                .mappings()
                .one_or_none()
            )
            if row is None:
                raise LookupError(f"no action request with id {key}")
            # pending too: a re-run whose message did not reach the bus can be sent again.
            if row["status"] not in (Status.failed, Status.pending):
                raise ValueError(
                    f"action request {key} is {row['status']}; only failed requests are re-run"
                )
            await conn.execute(
                update(action_ledger)
                .where(action_ledger.c.id == key, action_ledger.c.status == row["status"])
                .values(
                    status=Status.pending,
                    attempts=0,
                    round=action_ledger.c.round + 1,
                    finished=None,
                    next_attempt=None,
                )
            )
        return ActionRequest.model_validate_json(row["request"])

    async def get(self, key: str) -> dict[str, Any] | None:
        """One entry, or None."""
        async with self.engine.connect() as conn:
            row = (
                (await conn.execute(select(action_ledger).where(action_ledger.c.id == key)))
                .mappings()
                .one_or_none()
            )
        return _entry(row) if row is not None else None

    async def list(
        self,
        *,
        status: Status | None = None,
        automation: str | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """Newest first; `automation` is a name or an id."""
        table = action_ledger
        query = select(table).order_by(table.c.created.desc()).limit(limit)
        if status is not None:
            query = query.where(table.c.status == status)
        if automation is not None:
            query = query.where(
                or_(table.c.automation_id == automation, table.c.automation_name == automation)
            )
        async with self.engine.connect() as conn:
            return [_entry(row) for row in (await conn.execute(query)).mappings()]


def _entry(row: Any) -> dict[str, Any]:
    # Column names come back as quoted_name, a str subclass JSON encoders refuse as keys.
    return {str(key): value for key, value in row.items()}


def _aware(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything stored is UTC.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value
