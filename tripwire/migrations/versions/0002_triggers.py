"""Automations, trigger state, decision traces and the outbox.

Revision ID: 0002_triggers
Revises: 0001_events
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002_triggers"
down_revision = "0001_events"
branch_labels = None
depends_on = None

labels = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
moment = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "automations",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("definition", labels, nullable=False),
        sa.Column("created", moment, nullable=False),
        sa.Column("updated", moment, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_automations"),
        sa.UniqueConstraint("name", name="uq_automations_name"),
    )
    op.create_table(
        "automation_revision",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_automation_revision"),
    )
    op.execute("INSERT INTO automation_revision (id, revision) VALUES (1, 0)")
    op.create_table(
        "trigger_buckets",
        sa.Column("trigger_id", sa.String(36), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("automation_id", sa.String(36), nullable=False),
        sa.Column("start", moment, nullable=False),
        sa.Column("end", moment, nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("last_event", sa.String(36)),
        sa.Column("triggered", moment),
        sa.Column("proactive", sa.Boolean(), nullable=False),
        sa.Column("updated", moment, nullable=False),
        sa.PrimaryKeyConstraint("trigger_id", "key", name="pk_trigger_buckets"),
    )
    op.create_index("ix_trigger_buckets_proactive_end", "trigger_buckets", ["proactive", "end"])
    op.create_index("ix_trigger_buckets_automation_id", "trigger_buckets", ["automation_id"])
    op.create_table(
        "child_firings",
        sa.Column("parent_id", sa.String(36), nullable=False),
        sa.Column("child_id", sa.String(36), nullable=False),
        sa.Column("automation_id", sa.String(36), nullable=False),
        sa.Column("firing_id", sa.String(36), nullable=False),
        sa.Column("triggered", moment, nullable=False),
        sa.Column("event", sa.Text()),
        sa.PrimaryKeyConstraint("parent_id", "child_id", name="pk_child_firings"),
    )
    op.create_index("ix_child_firings_automation_id", "child_firings", ["automation_id"])
    op.create_table(
        "decisions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("automation_id", sa.String(36), nullable=False),
        sa.Column("trigger_id", sa.String(36), nullable=False),
        sa.Column("event_id", sa.String(36)),
        sa.Column("event", sa.String(1024)),
        sa.Column("occurred", moment),
        sa.Column("decided", moment, nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_decisions"),
    )
    op.create_index("ix_decisions_automation_id_id", "decisions", ["automation_id", "id"])
    op.create_index("ix_decisions_event_id", "decisions", ["event_id"])
    op.create_table(
        "outbox",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created", moment, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
    )
    op.create_index("ix_outbox_created", "outbox", ["created"])
    op.create_table(
        "deferred_events",
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("follows", sa.String(36), nullable=False),
        sa.Column("received", moment, nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name="pk_deferred_events"),
    )
    op.create_index("ix_deferred_events_follows", "deferred_events", ["follows"])
    op.create_index("ix_deferred_events_received", "deferred_events", ["received"])


def downgrade() -> None:
    for table in ("deferred_events", "outbox", "decisions", "child_firings", "trigger_buckets"):
        op.drop_table(table)
    op.drop_table("automation_revision")
    op.drop_table("automations")
