"""The action ledger: one row per action request, keyed by its deterministic id, and the
connections (Prefect servers) applied from YAML files.

The ledger is what makes a redelivered request act at most once after success, and what
`tripwire actions ls` shows. Shares `events.tables.metadata` (one Alembic history).
"""

from __future__ import annotations

from sqlalchemy import Column, Float, Index, Integer, String, Table, Text

from events.tables import Labels, metadata
from events.timestamps import UTCDateTime

action_ledger = Table(
    "action_ledger",
    metadata,
    Column("id", String(36), primary_key=True),  # the action request id
    Column("automation_id", String(36), nullable=False),
    Column("automation_name", String(200), nullable=False),
    Column("firing_id", String(36), nullable=False),
    Column("action_index", Integer, nullable=False),
    Column("action_type", String(64), nullable=False),
    # pending → running → succeeded | retrying → running … | failed (dead letter)
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("round", Integer, nullable=False),  # bumped by `tripwire actions retry`
    Column("lease_until", UTCDateTime()),  # a running attempt's claim
    Column("next_attempt", UTCDateTime()),  # when a retrying request is due
    Column("status_code", Integer),
    Column("result", Text),  # one-line summary of the answer (secrets redacted)
    Column("last_error", Text),  # secrets redacted
    Column("request", Text, nullable=False),  # the ActionRequest JSON, to run it again
    Column("created", UTCDateTime(), nullable=False),
    Column("started", UTCDateTime()),
    Column("finished", UTCDateTime()),
    Column("duration_ms", Float),  # of the last attempt
    Index(None, "status", "created"),
    Index(None, "automation_id", "created"),
    Index(None, "created"),
)

# Named connections from `connections:` in YAML files; the definition keeps its templates
# (`{{ secret('X') }}`): secrets are rendered by the worker when an action uses them.
connections = Table(
    "connections",
    metadata,
    Column("name", String(100), primary_key=True),
    Column("definition", Labels, nullable=False),
    Column("created", UTCDateTime(), nullable=False),
    Column("updated", UTCDateTime(), nullable=False),
)
