"""Tables of the trigger side: automations, trigger state, decisions and the outbox.

They share `events.tables.metadata`, so one Alembic history covers the whole schema.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    String,
    Table,
    Text,
)

from events.tables import Labels, metadata
from events.timestamps import UTCDateTime

automations = Table(
    "automations",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(200), nullable=False, unique=True),
    Column("enabled", Boolean, nullable=False),
    # The automation as Prefect's JSON shape, ids filled in.
    Column("definition", Labels, nullable=False),
    Column("created", UTCDateTime(), nullable=False),
    Column("updated", UTCDateTime(), nullable=False),
)

# One row, bumped in the same transaction as any change to `automations`; workers poll
# it to reload (a cheap primary-key read).
automation_revision = Table(
    "automation_revision",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("revision", Integer, nullable=False),
)

# The open window of one event trigger for one `for_each` key (Prefect's bucket).
trigger_buckets = Table(
    "trigger_buckets",
    metadata,
    Column("trigger_id", String(36), primary_key=True),
    Column("key", Text, primary_key=True),  # JSON array of the for_each values
    Column("automation_id", String(36), nullable=False),
    Column("start", UTCDateTime(), nullable=False),
    Column("end", UTCDateTime(), nullable=False),
    Column("count", Integer, nullable=False),
    Column("last_event", String(36)),  # the id of the last counted event
    Column("triggered", UTCDateTime()),  # a proactive firing awaiting resolve
    Column("proactive", Boolean, nullable=False),
    Column("updated", UTCDateTime(), nullable=False),  # wall clock
    Index(None, "proactive", "end"),
    Index(None, "automation_id"),
)

# What one metric trigger knows of one flow run: the state changes a metric needs, and the
# sample the run gives (its duration, lateness or success) once it has one.
metric_runs = Table(
    "metric_runs",
    metadata,
    Column("trigger_id", String(36), primary_key=True),
    Column("run", String(200), primary_key=True),  # the flow run's resource id
    Column("automation_id", String(36), nullable=False),
    Column("key", Text, nullable=False),  # JSON array of the for_each values
    Column("late", UTCDateTime()),  # when it went Late
    Column("started", UTCDateTime()),  # its first Running
    Column("running", UTCDateTime()),  # its latest Running
    Column("ended", UTCDateTime()),  # its latest terminal state
    Column("outcome", String(20)),  # that state's type: COMPLETED, FAILED ...
    Column("at", UTCDateTime()),  # when the sample counts (event time)
    Column("value", Float),  # seconds, or 1 / 0 for a success
    Column("touched", UTCDateTime(), nullable=False),  # its latest event (event time)
    Index(None, "trigger_id", "at"),
    Index(None, "automation_id"),
)

# Where one metric trigger stands for one for_each key: firing or not, and since when
# the condition has held (or, firing, stopped holding) without a break.
metric_states = Table(
    "metric_states",
    metadata,
    Column("trigger_id", String(36), primary_key=True),
    Column("key", Text, primary_key=True),
    Column("automation_id", String(36), nullable=False),
    Column("since", UTCDateTime()),  # the streak towards a change began
    Column("triggered", UTCDateTime()),  # firing since (None: quiet)
    Column("value", Float),  # at the last evaluation (None: no runs in range)
    Column("runs", Integer, nullable=False),  # the runs that value came from
    Column("evaluated", UTCDateTime(), nullable=False),  # the tick (event time)
    Index(None, "automation_id"),
)

# The latest firing of each child of a compound or sequence trigger.
child_firings = Table(
    "child_firings",
    metadata,
    Column("parent_id", String(36), primary_key=True),
    Column("child_id", String(36), primary_key=True),
    Column("automation_id", String(36), nullable=False),
    Column("firing_id", String(36), nullable=False),
    Column("triggered", UTCDateTime(), nullable=False),
    Column("event", Text),  # the triggering event, as JSON
    Index(None, "automation_id"),
)

# Why each candidate automation did or did not fire, newest last, trimmed per automation.
decisions = Table(
    "decisions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("automation_id", String(36), nullable=False),
    Column("trigger_id", String(36), nullable=False),
    Column("event_id", String(36)),
    Column("event", String(1024)),
    Column("occurred", UTCDateTime()),
    Column("decided", UTCDateTime(), nullable=False),
    Column("outcome", String(20), nullable=False),
    Column("reason", Text, nullable=False),
    Index(None, "automation_id", "id"),
    Index(None, "event_id"),
)

# Messages decided in a batch's transaction and published after it commits; a crash in
# between leaves them here for the relay (JetStream dedupes them by id).
outbox = Table(
    "outbox",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("subject", String(200), nullable=False),
    Column("body", Text, nullable=False),
    Column("created", UTCDateTime(), nullable=False),
    Index(None, "created"),
)

# Events that arrived before the event they follow (`follows`): held back, evaluated right
# after their leader, or on their own once they waited too long (Prefect's causal order).
deferred_events = Table(
    "deferred_events",
    metadata,
    Column("event_id", String(36), primary_key=True),
    Column("follows", String(36), nullable=False),
    Column("received", UTCDateTime(), nullable=False),
    Column("body", Text, nullable=False),
    Index(None, "follows"),
    Index(None, "received"),
)
