"""PostgreSQL: events and their related resources partitioned by day; ids kept in
`event_ids`. SQLite is left as it is.

The tables are copied: the old ones are renamed, the partitioned ones made with a
partition per day of the stored events (within a year back) and of the days around now,
the rows copied, then the keys and indexes built on the copies (faster than keeping them
up row by row). See docs/guides/production.md for how long it takes per million events.

Revision ID: 0009_event_partitions
Revises: 0008_metric_triggers
"""

from datetime import timedelta

import sqlalchemy as sa
from alembic import op

from events import clock, partitions

revision = "0009_event_partitions"
down_revision = "0008_metric_triggers"
branch_labels = None
depends_on = None

EVENT_COLUMNS = "id, occurred, event, resource_id, resource, received, recorded, follows, body"
RELATED_COLUMNS = "event_id, position, occurred, resource_id, resource_role, resource"
BACK = timedelta(days=366)  # stored days further back get no partition: the default has them
AROUND = timedelta(days=7)  # days before now made whatever is stored (the default retention)

EVENTS = """
CREATE TABLE events (
    id VARCHAR(36) NOT NULL,
    occurred TIMESTAMP WITH TIME ZONE NOT NULL,
    event VARCHAR(1024) NOT NULL,
    resource_id TEXT NOT NULL,
    resource JSONB NOT NULL,
    received TIMESTAMP WITH TIME ZONE NOT NULL,
    recorded TIMESTAMP WITH TIME ZONE NOT NULL,
    follows VARCHAR(36),
    body TEXT NOT NULL
) PARTITION BY RANGE (occurred)
"""
RELATED = """
CREATE TABLE event_resources (
    event_id VARCHAR(36) NOT NULL,
    position INTEGER NOT NULL,
    occurred TIMESTAMP WITH TIME ZONE NOT NULL,
    resource_id TEXT NOT NULL,
    resource_role TEXT NOT NULL,
    resource JSONB NOT NULL
) PARTITION BY RANGE (occurred)
"""
KEYS = [
    "ALTER TABLE events ADD CONSTRAINT pk_events PRIMARY KEY (id, occurred)",
    "CREATE INDEX ix_events_occurred_id ON events (occurred, id)",
    "CREATE INDEX ix_events_event_occurred ON events (event, occurred)",
    "CREATE INDEX ix_events_resource_id_occurred ON events (resource_id, occurred)",
    "ALTER TABLE event_resources ADD CONSTRAINT pk_event_resources "
    "PRIMARY KEY (event_id, position, occurred)",
    "CREATE INDEX ix_event_resources_resource_id_occurred "
    "ON event_resources (resource_id, occurred)",
    "CREATE INDEX ix_event_resources_resource_role_occurred "
    "ON event_resources (resource_role, occurred)",
    "ALTER TABLE event_ids ADD CONSTRAINT pk_event_ids PRIMARY KEY (id)",
    # Ids arrive about in time order: a BRIN index finds a day's ids to forget at almost
    # no cost per insert.
    "CREATE INDEX ix_event_ids_occurred ON event_ids USING brin (occurred)",
]
OLD_INDEXES = [
    "ix_events_occurred_id",
    "ix_events_event_occurred",
    "ix_events_resource_id_occurred",
    "ix_event_resources_resource_id_occurred",
    "ix_event_resources_resource_role_occurred",
]


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("ALTER TABLE events RENAME TO events_unpartitioned")
    op.execute("ALTER TABLE event_resources RENAME TO event_resources_unpartitioned")
    for index in OLD_INDEXES:
        op.execute(f"DROP INDEX {index}")
    op.execute("ALTER TABLE events_unpartitioned RENAME CONSTRAINT pk_events TO pk_events_old")
    op.execute(
        "ALTER TABLE event_resources_unpartitioned "
        "RENAME CONSTRAINT pk_event_resources TO pk_event_resources_old"
    )
    op.execute(EVENTS)
    op.execute(RELATED)
    op.execute(
        "CREATE TABLE event_ids (id VARCHAR(36) NOT NULL, "
        "occurred TIMESTAMP WITH TIME ZONE NOT NULL)"
    )
    for table in partitions.TABLES:
        op.execute(f"CREATE TABLE {partitions.default_name(table)} PARTITION OF {table} DEFAULT")
    now = clock.now()
    stored = op.get_bind().execute(
        sa.text(
            "SELECT DISTINCT (occurred AT TIME ZONE 'UTC')::date FROM events_unpartitioned "
            "WHERE occurred >= :since AND occurred < :until"
        ),
        {"since": now - BACK, "until": now + timedelta(days=partitions.AHEAD + 1)},
    )
    days = {row[0] for row in stored} | set(partitions.wanted(now, AROUND))
    for day in sorted(days):
        for table in partitions.TABLES:
            start, end = (f"'{m.isoformat()}'" for m in partitions.bounds(day))
            op.execute(
                f"CREATE TABLE {partitions.day_name(table, day)} PARTITION OF {table} "
                f"FOR VALUES FROM ({start}) TO ({end})"
            )
    op.execute(
        f"INSERT INTO events ({EVENT_COLUMNS}) SELECT {EVENT_COLUMNS} FROM events_unpartitioned"
    )
    op.execute(
        f"INSERT INTO event_resources ({RELATED_COLUMNS}) "
        f"SELECT {RELATED_COLUMNS} FROM event_resources_unpartitioned"
    )
    op.execute("INSERT INTO event_ids (id, occurred) SELECT id, occurred FROM events_unpartitioned")
    op.execute("DROP TABLE event_resources_unpartitioned")
    op.execute("DROP TABLE events_unpartitioned")
    for statement in KEYS:
        op.execute(statement)
    # New tables have no statistics until autovacuum comes by, and without them the
    # planner's guesses for the related-resource subqueries were several times slower.
    op.execute("ANALYZE events, event_resources, event_ids")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table in ("events", "event_resources"):
        op.execute(f"ALTER TABLE {table} RENAME TO {table}_partitioned")
    for index in [*OLD_INDEXES, "pk_events", "pk_event_resources"]:
        op.execute(f"ALTER INDEX {index} RENAME TO {index}_partitioned")
    op.execute(EVENTS.replace(" PARTITION BY RANGE (occurred)", ""))
    op.execute(RELATED.replace(" PARTITION BY RANGE (occurred)", ""))
    op.execute(
        f"INSERT INTO events ({EVENT_COLUMNS}) SELECT {EVENT_COLUMNS} FROM events_partitioned"
    )
    op.execute(
        f"INSERT INTO event_resources ({RELATED_COLUMNS}) "
        f"SELECT {RELATED_COLUMNS} FROM event_resources_partitioned"
    )
    op.execute("DROP TABLE event_resources_partitioned")
    op.execute("DROP TABLE events_partitioned")
    op.execute("DROP TABLE event_ids")
    op.execute("ALTER TABLE events ADD CONSTRAINT pk_events PRIMARY KEY (id)")
    op.execute(
        "ALTER TABLE event_resources ADD CONSTRAINT pk_event_resources "
        "PRIMARY KEY (event_id, position)"
    )
    for statement in KEYS[1:4] + KEYS[5:7]:
        op.execute(statement)
