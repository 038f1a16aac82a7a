"""The event store: events and their related resources.

Revision ID: 0001_events
Revises:
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001_events"
down_revision = None
branch_labels = None
depends_on = None

labels = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("occurred", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event", sa.String(1024), nullable=False),
        sa.Column("resource_id", sa.Text(), nullable=False),
        sa.Column("resource", labels, nullable=False),
        sa.Column("received", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded", sa.DateTime(timezone=True), nullable=False),
        sa.Column("follows", sa.String(36)),
        sa.Column("body", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_events"),
    )
    op.create_index("ix_events_occurred_id", "events", ["occurred", "id"])
    op.create_index("ix_events_event_occurred", "events", ["event", "occurred"])
    op.create_index("ix_events_resource_id_occurred", "events", ["resource_id", "occurred"])
    op.create_table(
        "event_resources",
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("occurred", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resource_id", sa.Text(), nullable=False),
        sa.Column("resource_role", sa.Text(), nullable=False),
        sa.Column("resource", labels, nullable=False),
        sa.PrimaryKeyConstraint("event_id", "position", name="pk_event_resources"),
    )
    op.create_index(
        "ix_event_resources_resource_id_occurred", "event_resources", ["resource_id", "occurred"]
    )
    op.create_index(
        "ix_event_resources_resource_role_occurred",
        "event_resources",
        ["resource_role", "occurred"],
    )


def downgrade() -> None:
    op.drop_table("event_resources")
    op.drop_table("events")
