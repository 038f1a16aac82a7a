"""Events per minute and name, for charts over a day without reading a day of events.

Revision ID: 0006_event_counts
Revises: 0005_webhooks
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_event_counts"
down_revision = "0005_webhooks"
branch_labels = None
depends_on = None

# The events stored before this revision, counted once (as shard 0).
MINUTE = {
    "postgresql": "CAST(FLOOR(EXTRACT(EPOCH FROM occurred) / 60) AS INTEGER)",
    "sqlite": "CAST(strftime('%s', occurred) AS INTEGER) / 60",
}


def upgrade() -> None:
    op.create_table(
        "event_counts",
        sa.Column("minute", sa.Integer(), nullable=False),
        sa.Column("event", sa.String(1024), nullable=False),
        sa.Column("shard", sa.Integer(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("minute", "event", "shard", name="pk_event_counts"),
    )
    minute = MINUTE[op.get_bind().dialect.name]
    op.execute(
        "INSERT INTO event_counts (minute, event, shard, count) "
        f"SELECT {minute} AS m, event, 0, COUNT(*) FROM events GROUP BY m, event"
    )


def downgrade() -> None:
    op.drop_table("event_counts")
