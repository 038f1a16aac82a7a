"""The action ledger and named connections.

Revision ID: 0003_actions
Revises: 0002_triggers
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003_actions"
down_revision = "0002_triggers"
branch_labels = None
depends_on = None

labels = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
moment = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "action_ledger",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("automation_id", sa.String(36), nullable=False),
        sa.Column("automation_name", sa.String(200), nullable=False),
        sa.Column("firing_id", sa.String(36), nullable=False),
        sa.Column("action_index", sa.Integer(), nullable=False),
        sa.Column("action_type", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("lease_until", moment),
        sa.Column("next_attempt", moment),
        sa.Column("status_code", sa.Integer()),
        sa.Column("result", sa.Text()),
        sa.Column("last_error", sa.Text()),
        sa.Column("request", sa.Text(), nullable=False),
        sa.Column("created", moment, nullable=False),
        sa.Column("started", moment),
        sa.Column("finished", moment),
        sa.Column("duration_ms", sa.Float()),
        sa.PrimaryKeyConstraint("id", name="pk_action_ledger"),
    )
    op.create_index("ix_action_ledger_status_created", "action_ledger", ["status", "created"])
    op.create_index(
        "ix_action_ledger_automation_id_created", "action_ledger", ["automation_id", "created"]
    )
    op.create_index("ix_action_ledger_created", "action_ledger", ["created"])
    op.create_table(
        "connections",
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("definition", labels, nullable=False),
        sa.Column("created", moment, nullable=False),
        sa.Column("updated", moment, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_connections"),
    )


def downgrade() -> None:
    op.drop_table("connections")
    op.drop_table("action_ledger")
