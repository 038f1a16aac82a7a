"""The action ledger: claims, outcomes and the dead letter, one row per action request.

A worker claims a request before it acts: the claim succeeds for a new request, a
request due for a retry, or one whose last claim lapsed (its worker died mid-action).
Finished requests (succeeded, or failed for good) are never claimed again, which is what
makes a redelivered request act at most once after success.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from uuid import UUID

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from actions.request import ActionRequest
from actions.tables import action_ledger
from events import bulk, clock
from events.timestamps import UTCDateTime


class Status(StrEnum):
    """Where a request stands."""

    pending = "pending"
    running = "running"
    retrying = "retrying"
    succeeded = "succeeded"
    failed = "failed"  # permanent, or out of attempts: the dead letter


FINISHED = frozenset({Status.succeeded, Status.failed})


@dataclass(frozen=True)
class Record:
    """The outcome of one attempt, for `record_many`."""

    key: UUID
    status: Status
    attempt: int | None = None  # the claim's attempt: the write is fenced on it
    result: str | None = None
    error: str | None = None
    status_code: int | None = None
    duration_ms: float | None = None
    next_attempt: datetime | None = None


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

    async def claim(self, request: ActionRequest, lease: timedelta) -> Claim:
        """Record the request if new and claim it for one attempt when it may run now."""
        return (await self.claim_many([request], lease))[0]

    async def claim_many(self, requests: Sequence[ActionRequest], lease: timedelta) -> list[Claim]:
        """`claim` for many requests in one transaction (a copy of one in the same batch
        is not granted: the first one runs). Hand-written SQL through the driver: every
        action passes here, and SQLAlchemy's statement building cost more than the
        statements."""
        now = clock.now()
        keys = [str(request.id) for request in requests]
        new = {str(r.id): r for r in requests}
        async with self.engine.begin() as conn:
            await bulk.insert(
                conn,
                action_ledger,
                NEW_COLUMNS,
                [_new_row(request, now) for request in new.values()],
                'ON CONFLICT ("id") DO NOTHING',
                repeatable=True,
            )
            before: dict[str, dict[str, Any]] = {}
            granted: dict[str, tuple[int, int]] = {}
            for chunk in bulk.chunked(list(new), bulk.per_statement(1)):
                marks = bulk.Marks(conn.dialect.name)
                ids = marks.many(len(chunk))
                query = f'SELECT {SHOWN_COLUMNS} FROM "action_ledger" WHERE "id" IN ({ids})'
                for row in await bulk.execute(conn, query, tuple(chunk)):
                    entry = _shown(row)
                    before[entry["id"]] = entry
                marks = bulk.Marks(conn.dialect.name)
                claim = (
                    f'UPDATE "action_ledger" SET "status" = {marks.many(1)}, '
                    f'"attempts" = "attempts" + 1, "lease_until" = {marks.many(1)}, '
                    f'"started" = COALESCE("started", {marks.many(1)}) '
                    f'WHERE "id" IN ({marks.many(len(chunk))}) AND ("status" = {marks.many(1)} '
                    f'OR ("status" = {marks.many(1)} AND "next_attempt" <= {marks.many(1)}) '
                    f'OR ("status" = {marks.many(1)} AND "lease_until" <= {marks.many(1)})) '
                    # what the update saw, not the snapshot read before it
                    'RETURNING "id", "attempts", "round"'
                )
                running = Status.running.value
                claimable = (Status.pending.value, Status.retrying.value, now, running, now)
                parameters = bulk.values(conn, [running, now + lease, now, *chunk, *claimable])
                for key, attempts, round_ in await bulk.execute(conn, claim, parameters):
                    granted[key] = (attempts, round_)
        # A second copy of a request in this batch waits for the first (pop).
        return [_claim(before[key], granted.pop(key, None), now, lease) for key in keys]

    async def record_many(self, records: Sequence[Record]) -> list[bool]:
        """Write the outcomes of many attempts in one transaction; each is True when it
        landed. One with an `attempt` is written only while that attempt's claim holds
        (status running, same attempt): a worker whose claim lapsed and was taken over
        cannot overwrite the outcome of the worker that took it. Through the driver, as
        claims are."""
        now = clock.now()
        by_status: dict[Status, list[Record]] = {}
        for record in records:
            by_status.setdefault(record.status, []).append(record)
        keys = list(dict.fromkeys(str(r.key) for r in records))
        after: dict[str, tuple[str, int]] = {}
        async with self.engine.begin() as conn:
            for status, group in by_status.items():
                rows = [bulk.values(conn, _outcome_row(r, now)) for r in group]
                await bulk.execute_many(conn, _outcome_sql(conn.dialect.name, status), rows)
            # executemany gives no count per row: read back what each record left.
            query = 'SELECT "id", "status", "attempts" FROM "action_ledger" WHERE "id" IN ({})'
            for key, status, attempts in await bulk.execute_in(conn, query, keys):
                after[key] = (status, attempts)
        return [
            after.get(str(r.key), ("", -1))[0] == r.status
            and (r.attempt is None or after[str(r.key)][1] == r.attempt)
            for r in records
        ]

    async def rerun(self, key: str) -> ActionRequest:
        """Reset a failed request for another round of attempts (`tripwire actions retry`);
        a pending one keeps its round, to be sent again.

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
            if row["status"] == Status.pending:
                # Same round, so the same message id: the bus drops the copy if the first
                # got through. A new round here would run the request twice.
                return ActionRequest.model_validate_json(row["request"])
            reset = await conn.execute(
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
            if reset.rowcount != 1:
                raise ValueError(f"action request {key} changed meanwhile; look again")
        return ActionRequest.model_validate_json(row["request"])

    async def sweep(self, before: datetime) -> int:
        """Delete finished entries older than `before` (the event retention); returns how
        many. Pending, running and retrying ones are kept whatever their age."""
        table = action_ledger
        async with self.engine.begin() as conn:
            result = await conn.execute(
                delete(table).where(table.c.status.in_(list(FINISHED)), table.c.created < before)
            )
        return int(result.rowcount or 0)

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
        before: tuple[datetime, str] | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """Entries without their request bodies, newest first; `automation` is a name or an
        id; `before` (created, id) continues after the last entry of a previous page."""
        table = action_ledger
        query = select(*SHOWN).order_by(table.c.created.desc(), table.c.id.desc()).limit(limit)
        if before is not None:
            created, key = before
            query = query.where(
                (table.c.created < created) | ((table.c.created == created) & (table.c.id < key))
            )
        if status is not None:
            query = query.where(table.c.status == status)
        if automation is not None:
            query = query.where(
                or_(table.c.automation_id == automation, table.c.automation_name == automation)
            )
        async with self.engine.connect() as conn:
            return [_entry(row) for row in (await conn.execute(query)).mappings()]


# What a claim reads back: everything but the request body.
SHOWN = [c for c in action_ledger.c if c.name != "request"]
SHOWN_NAMES = [c.name for c in SHOWN]
SHOWN_COLUMNS = ", ".join(f'"{name}"' for name in SHOWN_NAMES)
SHOWN_TIMES = frozenset(c.name for c in SHOWN if isinstance(c.type, UTCDateTime))
# A new row sets exactly the columns that may not be NULL (in the table's order).
NEW_COLUMNS = tuple(c.name for c in action_ledger.c if not c.nullable)


def _new_row(request: ActionRequest, now: datetime) -> tuple[Any, ...]:
    """A new ledger row, in the order of NEW_COLUMNS."""
    return (
        str(request.id),
        str(request.automation.id),
        request.automation.name,
        str(request.firing_id),
        request.action_index,
        request.action.type,
        Status.pending.value,
        0,
        0,
        request.model_dump_json(),
        now,
    )


def _outcome_sql(dialect: str, status: Status) -> str:
    """The update that records an outcome of `status`; parameters as in `_outcome_row`."""
    marks = bulk.Marks(dialect)
    text = "result" if status is Status.succeeded else "last_error"
    when = "next_attempt" if status is Status.retrying else "finished"
    cleared = "" if status is Status.retrying else ', "next_attempt" = NULL'
    return (
        f'UPDATE "action_ledger" SET "status" = {marks.many(1)}, "status_code" = '
        f'{marks.many(1)}, "duration_ms" = {marks.many(1)}, "lease_until" = NULL, '
        f'"{text}" = {marks.many(1)}, "{when}" = {marks.many(1)}{cleared} '
        f'WHERE "id" = {marks.many(1)} AND (CAST({marks.many(1)} AS INTEGER) IS NULL '
        f'OR ("status" = {marks.many(1)} AND "attempts" = {marks.many(1)}))'
    )


def _outcome_row(record: Record, now: datetime) -> tuple[Any, ...]:
    succeeded = record.status is Status.succeeded
    retrying = record.status is Status.retrying
    return (
        record.status.value,
        record.status_code,
        record.duration_ms,
        record.result if succeeded else record.error,
        record.next_attempt if retrying else now,
        str(record.key),
        record.attempt,
        Status.running.value,
        record.attempt,
    )


def _claim(
    entry: dict[str, Any], won: tuple[int, int] | None, now: datetime, lease: timedelta
) -> Claim:
    """The claim for one request: `entry` as read before the update, `won` the attempt and
    round the update gave it (None when it was not claimable)."""
    status = Status(entry["status"])
    if won is not None:
        attempts, round_ = won
        return Claim(
            granted=True,
            status=Status.running,
            attempts=attempts,
            round=round_,
            interrupted=status is Status.running,
        )
    attempts, round_ = entry["attempts"], entry["round"]
    if status in FINISHED:
        return Claim(granted=False, status=status, attempts=attempts, round=round_, entry=entry)
    if status is Status.pending:  # a copy of a request granted earlier in the same batch
        return Claim(
            granted=False,
            status=Status.running,
            attempts=attempts,
            round=round_,
            wait=lease.total_seconds(),
        )
    until = entry["lease_until"] if status is Status.running else entry["next_attempt"]
    wait = (until - now).total_seconds() if until is not None else 1.0
    return Claim(granted=False, status=status, attempts=attempts, round=round_, wait=max(wait, 0.1))


def _entry(row: Any) -> dict[str, Any]:
    # Column names come back as quoted_name, a str subclass JSON encoders refuse as keys.
    return {str(key): value for key, value in row.items()}


def _shown(row: Sequence[Any]) -> dict[str, Any]:
    """A row of SHOWN columns read through the driver, times as aware datetimes."""
    return {
        name: bulk.read_time(value) if name in SHOWN_TIMES and value is not None else value
        for name, value in zip(SHOWN_NAMES, row, strict=True)
    }
