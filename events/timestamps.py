"""Times in the database: one column type that stores UTC and always reads back aware
UTC datetimes, on SQLite and PostgreSQL alike.

PostgreSQL keeps instants (TIMESTAMP WITH TIME ZONE) and asyncpg hands back aware
datetimes. SQLite has no such type: SQLAlchemy's SQLite DATETIME stores text, writes the
wall time of whatever datetime it gets with its offset dropped, and reads back naive
datetimes. So every time goes in as UTC and comes out marked UTC. The text is the one
`events.bulk` writes through the driver on the hot path ("2026-01-01 09:00:00.000000",
UTC), so rows written either way compare, sort and read back the same.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


def as_utc(value: datetime) -> datetime:
    """`value` as an aware UTC datetime; a naive one is taken to be in UTC already."""
    return value.astimezone(UTC) if value.tzinfo is not None else value.replace(tzinfo=UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp column that stores UTC and reads back aware UTC datetimes.

    Usage::

        Column("occurred", UTCDateTime, nullable=False)

    Same schema as `DateTime(timezone=True)`: tables made with it need no migration.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """A time bound for writing or comparing, in UTC."""
        return None if value is None else as_utc(value)

    def process_result_value(self, value: Any | None, dialect: Dialect) -> datetime | None:
        """A time read back, aware and in UTC."""
        return None if value is None else as_utc(value)
