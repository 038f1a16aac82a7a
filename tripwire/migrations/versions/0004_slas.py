"""SLA definitions and the open window of each SLA per key.

Revision ID: 0004_slas
Revises: 0003_actions
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004_slas"
down_revision = "0003_actions"
branch_labels = None
depends_on = None

labels = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
moment = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "slas",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("definition", labels, nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("created", moment, nullable=False),
        sa.Column("updated", moment, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_slas"),
        sa.UniqueConstraint("name", name="uq_slas_name"),
    )
    op.create_table(
        "sla_windows",
        sa.Column("sla_id", sa.String(36), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("labels", labels, nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("opened", moment, nullable=False),
        sa.Column("deadline", moment, nullable=False),
        sa.Column("due", moment, nullable=False),
        sa.Column("armed", sa.Boolean(), nullable=False),
        sa.Column("warn_at", moment),
        sa.Column("met", moment),
        sa.Column("missed", moment),
        sa.Column("missed_id", sa.String(36)),
        sa.Column("last_seen", moment),
        sa.Column("last_event", sa.String(36)),
        sa.Column("updated", moment, nullable=False),
        sa.PrimaryKeyConstraint("sla_id", "key", name="pk_sla_windows"),
    )
    op.create_index("ix_sla_windows_armed_due", "sla_windows", ["armed", "due"])
    op.create_index("ix_sla_windows_warn_at", "sla_windows", ["warn_at"])


def downgrade() -> None:
    op.drop_table("sla_windows")
    op.drop_table("slas")
