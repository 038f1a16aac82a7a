"""Event store tables. Other packages add their tables to the same `metadata`."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)
from sqlalchemy.dialects.postgresql import JSONB

from events.timestamps import UTCDateTime

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

Labels = JSON().with_variant(JSONB(), "postgresql")

events = Table(
    "events",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("occurred", UTCDateTime(), nullable=False),
    Column("event", String(1024), nullable=False),
    Column("resource_id", Text, nullable=False),
    Column("resource", Labels, nullable=False),
    Column("received", UTCDateTime(), nullable=False),
    Column("recorded", UTCDateTime(), nullable=False),
    Column("follows", String(36)),
    # The whole ReceivedEvent as JSON: read back without re-assembling columns.
    Column("body", Text, nullable=False),
    Index(None, "occurred", "id"),
    Index(None, "event", "occurred"),
    Index(None, "resource_id", "occurred"),
)

# One row per related resource, for filtering by role, id and labels. On PostgreSQL the
# two indexes end with `event_id` (revision 0010), so a page with no time range is read
# from them in page order across the day partitions (events/store.py).
event_resources = Table(
    "event_resources",
    metadata,
    Column("event_id", String(36), primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("occurred", UTCDateTime(), nullable=False),
    Column("resource_id", Text, nullable=False),
    Column("resource_role", Text, nullable=False),
    Column("resource", Labels, nullable=False),
    Index(None, "resource_id", "occurred"),
    Index(None, "resource_role", "occurred"),
)

# PostgreSQL only (revision 0009): every stored event's id, unique across the day
# partitions of `events`, whose own key must include `occurred` (events/partitions.py).
event_ids = Table(
    "event_ids",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("occurred", UTCDateTime(), nullable=False),
)

# Events per minute and name, kept up in the transaction that stores them, so counts over
# a day are read from at most a few thousand rows. Each store process writes rows of its
# own `shard`: workers storing at once never wait for one another's counters.
event_counts = Table(
    "event_counts",
    metadata,
    Column("minute", Integer, primary_key=True),  # minutes since 1970-01-01 UTC (occurred)
    Column("event", String(1024), primary_key=True),
    Column("shard", Integer, primary_key=True),
    Column("count", Integer, nullable=False),
)
