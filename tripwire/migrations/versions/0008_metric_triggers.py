"""Metric triggers: what each knows of the flow runs it measures, and where each key stands.

Revision ID: 0008_metric_triggers
Revises: 0007_alerts
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_metric_triggers"
down_revision = "0007_alerts"
branch_labels = None
depends_on = None

moment = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "metric_runs",
        sa.Column("trigger_id", sa.String(36), nullable=False),
        sa.Column("run", sa.String(200), nullable=False),
        sa.Column("automation_id", sa.String(36), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("late", moment),
        sa.Column("started", moment),
        sa.Column("running", moment),
        sa.Column("ended", moment),
        sa.Column("outcome", sa.String(20)),
        sa.Column("at", moment),
        sa.Column("value", sa.Float()),
        sa.Column("touched", moment, nullable=False),
        sa.PrimaryKeyConstraint("trigger_id", "run", name="pk_metric_runs"),
    )
    op.create_index("ix_metric_runs_trigger_id_at", "metric_runs", ["trigger_id", "at"])
    op.create_index("ix_metric_runs_automation_id", "metric_runs", ["automation_id"])
    op.create_table(
        "metric_states",
        sa.Column("trigger_id", sa.String(36), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("automation_id", sa.String(36), nullable=False),
        sa.Column("since", moment),
        sa.Column("triggered", moment),
        sa.Column("value", sa.Float()),
        sa.Column("runs", sa.Integer(), nullable=False),
        sa.Column("evaluated", moment, nullable=False),
        sa.PrimaryKeyConstraint("trigger_id", "key", name="pk_metric_states"),
    )
    op.create_index("ix_metric_states_automation_id", "metric_states", ["automation_id"])


def downgrade() -> None:
    op.drop_table("metric_states")
    op.drop_table("metric_runs")
