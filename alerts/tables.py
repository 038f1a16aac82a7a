"""Tables of the alerts: the alerts with their history, the firings that fed them, and
the notification groups with their timers.

They share `events.tables.metadata`, so one Alembic history covers the whole schema.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Index, Integer, String, Table, Text

from events.tables import Labels, metadata
from events.timestamps import UTCDateTime

# One row per episode: an alert that resolves and fires again is a new row with the same
# fingerprint. `open_fingerprint` holds the fingerprint while the alert is open and NULL
# once resolved, so its unique index allows one open alert per fingerprint.
alerts = Table(
    "alerts",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    Column("open_fingerprint", String(64), unique=True),
    Column("kind", String(20), nullable=False),  # automation or sla
    Column("source_id", String(36), nullable=False),
    Column("name", String(200), nullable=False),
    Column("key", Labels, nullable=False),  # the for_each labels
    Column("labels", Labels, nullable=False),
    Column("severity", String(20), nullable=False),
    Column("state", String(20), nullable=False),  # firing, acknowledged, resolved
    Column("summary", Text, nullable=False),
    Column("first_fired", UTCDateTime(), nullable=False),
    Column("last_fired", UTCDateTime(), nullable=False),
    Column("count", Integer, nullable=False),
    Column("pending_until", UTCDateTime()),  # pending_for: not notified before
    Column("resolve_at", UTCDateTime()),  # resolve_after or keep_firing_for runs out then
    Column("resolved", UTCDateTime()),
    Column("resolved_by", String(200)),
    Column("acknowledged", UTCDateTime()),
    Column("acknowledged_until", UTCDateTime()),
    Column("acknowledged_by", String(200)),
    Column("comment", Text),
    Column("downstream", Labels, nullable=False),  # what depends on the alert's resource
    Column("updated", UTCDateTime(), nullable=False),
    Index("ix_alerts_state_last_fired", "state", "last_fired"),
    Index("ix_alerts_fingerprint", "fingerprint"),
    Index("ix_alerts_resolve_at", "resolve_at"),
)

alert_firings = Table(
    "alert_firings",
    metadata,
    Column("alert_id", String(36), primary_key=True),
    Column("firing_id", String(36), primary_key=True),
    Column("event_id", String(36), nullable=False),  # the tripwire.automation/sla event
    Column("fired", UTCDateTime(), nullable=False),
    Column("state", String(20), nullable=False),  # triggered, missed, at-risk
)

# One row per notification action and values of its `by` labels. The id is a hash of
# both, so automations that share an action (same definition, same grouping) share its
# groups. `due` is when the timer decides the group next.
alert_groups = Table(
    "alert_groups",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("action", Labels, nullable=False),  # the action's definition
    Column("source_kind", String(20), nullable=False),
    Column("source_id", String(36), nullable=False),  # named in the requests it sends
    Column("source_name", String(200), nullable=False),
    Column("labels", Labels, nullable=False),  # the by labels and their values
    Column("due", UTCDateTime()),
    Column("status", String(20)),  # what the last notice said; NULL before the first
    Column("sent", UTCDateTime()),
    Column("sent_alerts", Labels),  # {alert id: state} as the last notice said
    Column("sequence", Integer, nullable=False),  # notices sent: the next request's id
    Column("updated", UTCDateTime(), nullable=False),
    Index("ix_alert_groups_due", "due"),
)

alert_group_members = Table(
    "alert_group_members",
    metadata,
    Column("group_id", String(64), primary_key=True),
    Column("alert_id", String(36), primary_key=True, index=True),
    Column("added", UTCDateTime(), nullable=False),
)

# Silences added by hand (CLI, API, dashboard): who, when and why are kept. `ends` is
# NULL for one that lasts until the alerts it covers resolve; `expired` is set when it
# is ended early (by hand, or when those alerts have resolved).
silences = Table(
    "silences",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("matchers", Labels, nullable=False),  # ["automation=etl-*", ...]
    Column("starts", UTCDateTime(), nullable=False),
    Column("ends", UTCDateTime()),
    Column("until_resolved", Boolean, nullable=False),
    Column("actions", String(20), nullable=False),  # notifications or all
    Column("created_by", String(200), nullable=False),
    Column("comment", Text, nullable=False),
    Column("created", UTCDateTime(), nullable=False),
    Column("expired", UTCDateTime()),
    Index("ix_silences_ends", "ends"),
)

# Recurring maintenance windows and inhibition rules from definitions files, by name.
recurring_silences = Table(
    "recurring_silences",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("definition", Labels, nullable=False),
    Column("created", UTCDateTime(), nullable=False),
    Column("updated", UTCDateTime(), nullable=False),
)

inhibit_rules = Table(
    "inhibit_rules",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("definition", Labels, nullable=False),
    Column("created", UTCDateTime(), nullable=False),
    Column("updated", UTCDateTime(), nullable=False),
)

# Asset lineage as Prefect's materialization events tell it: each names its upstream
# assets as related resources in role `asset`.
asset_edges = Table(
    "asset_edges",
    metadata,
    Column("upstream", Text, primary_key=True),
    Column("downstream", Text, primary_key=True),
    Column("downstream_name", Text),
    Column("seen", UTCDateTime(), nullable=False),
)
