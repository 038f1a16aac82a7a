"""Tables of the SLA side: definitions and each SLA's open window per key.

They share `events.tables.metadata`, so one Alembic history covers the whole schema.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Index, String, Table, Text

from events.tables import Labels, metadata
from events.timestamps import UTCDateTime

slas = Table(
    "slas",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("kind", String(16), nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("definition", Labels, nullable=False),  # the SLA as its JSON shape
    Column("fingerprint", String(64), nullable=False),  # of what it watches; see store.py
    Column("created", UTCDateTime(), nullable=False),
    Column("updated", UTCDateTime(), nullable=False),
)

# One row per SLA and `for_each` key: the window being watched now, and a miss that has
# not recovered yet.
sla_windows = Table(
    "sla_windows",
    metadata,
    Column("sla_id", String(36), primary_key=True),
    Column("key", Text, primary_key=True),  # JSON array of the for_each values
    Column("labels", Labels, nullable=False),  # the keyed resource, for events about it
    Column("fingerprint", String(64), nullable=False),
    Column("opened", UTCDateTime(), nullable=False),  # the window's start
    Column("deadline", UTCDateTime(), nullable=False),  # what was promised
    Column("due", UTCDateTime(), nullable=False),  # deadline + grace
    Column("armed", Boolean, nullable=False),  # the timer is on for `due`
    Column("warn_at", UTCDateTime()),  # an at-risk warning still to come
    Column("met", UTCDateTime()),  # when the window was met (deadline kind)
    Column("missed", UTCDateTime()),  # the deadline of a miss not yet recovered
    Column("missed_id", String(36)),  # that miss's firing id
    Column("last_seen", UTCDateTime()),
    Column("last_event", String(36)),
    Column("updated", UTCDateTime(), nullable=False),  # wall clock
    Index(None, "armed", "due"),
    Index(None, "warn_at"),
)
