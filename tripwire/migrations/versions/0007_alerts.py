"""Alerts, the firings that fed them, notification groups, silences and inhibition rules.

Revision ID: 0007_alerts
Revises: 0006_event_counts
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0007_alerts"
down_revision = "0006_event_counts"
branch_labels = None
depends_on = None

Labels = sa.JSON().with_variant(JSONB(), "postgresql")
moment = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("open_fingerprint", sa.String(64)),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("source_id", sa.String(36), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("key", Labels, nullable=False),
        sa.Column("labels", Labels, nullable=False),
        sa.Column("severity", sa.String(20), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("first_fired", moment, nullable=False),
        sa.Column("last_fired", moment, nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("pending_until", moment),
        sa.Column("resolve_at", moment),
        sa.Column("resolved", moment),
        sa.Column("resolved_by", sa.String(200)),
        sa.Column("acknowledged", moment),
        sa.Column("acknowledged_until", moment),
        sa.Column("acknowledged_by", sa.String(200)),
        sa.Column("comment", sa.Text()),
        sa.Column("downstream", Labels, nullable=False),
        sa.Column("updated", moment, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_alerts"),
        sa.UniqueConstraint("open_fingerprint", name="uq_alerts_open_fingerprint"),
    )
    op.create_index("ix_alerts_state_last_fired", "alerts", ["state", "last_fired"])
    op.create_index("ix_alerts_fingerprint", "alerts", ["fingerprint"])
    op.create_index("ix_alerts_resolve_at", "alerts", ["resolve_at"])
    op.create_table(
        "alert_firings",
        sa.Column("alert_id", sa.String(36), nullable=False),
        sa.Column("firing_id", sa.String(36), nullable=False),
        sa.Column("event_id", sa.String(36), nullable=False),
        sa.Column("fired", moment, nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.PrimaryKeyConstraint("alert_id", "firing_id", name="pk_alert_firings"),
    )
    op.create_table(
        "alert_groups",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("action", Labels, nullable=False),
        sa.Column("source_kind", sa.String(20), nullable=False),
        sa.Column("source_id", sa.String(36), nullable=False),
        sa.Column("source_name", sa.String(200), nullable=False),
        sa.Column("labels", Labels, nullable=False),
        sa.Column("due", moment),
        sa.Column("status", sa.String(20)),
        sa.Column("sent", moment),
        sa.Column("sent_alerts", Labels),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("updated", moment, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_alert_groups"),
    )
    op.create_index("ix_alert_groups_due", "alert_groups", ["due"])
    op.create_table(
        "alert_group_members",
        sa.Column("group_id", sa.String(64), nullable=False),
        sa.Column("alert_id", sa.String(36), nullable=False),
        sa.Column("added", moment, nullable=False),
        sa.PrimaryKeyConstraint("group_id", "alert_id", name="pk_alert_group_members"),
    )
    op.create_index("ix_alert_group_members_alert_id", "alert_group_members", ["alert_id"])


    op.create_table(
        "silences",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("matchers", Labels, nullable=False),
        sa.Column("starts", moment, nullable=False),
        sa.Column("ends", moment),
        sa.Column("until_resolved", sa.Boolean(), nullable=False),
        sa.Column("actions", sa.String(20), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("created", moment, nullable=False),
        sa.Column("expired", moment),
        sa.PrimaryKeyConstraint("id", name="pk_silences"),
    )
    op.create_index("ix_silences_ends", "silences", ["ends"])
    for name in ("recurring_silences", "inhibit_rules"):
        op.create_table(
            name,
            sa.Column("name", sa.String(200), nullable=False),
            sa.Column("definition", Labels, nullable=False),
            sa.Column("created", moment, nullable=False),
            sa.Column("updated", moment, nullable=False),
            sa.PrimaryKeyConstraint("name", name=f"pk_{name}"),
        )
    op.create_table(
        "asset_edges",
        sa.Column("upstream", sa.Text(), nullable=False),
        sa.Column("downstream", sa.Text(), nullable=False),
        sa.Column("downstream_name", sa.Text()),
        sa.Column("seen", moment, nullable=False),
        sa.PrimaryKeyConstraint("upstream", "downstream", name="pk_asset_edges"),
    )


def downgrade() -> None:
    op.drop_table("asset_edges")
    op.drop_table("inhibit_rules")
    op.drop_table("recurring_silences")
    op.drop_table("silences")
    op.drop_table("alert_group_members")
    op.drop_table("alert_groups")
    op.drop_table("alert_firings")
    op.drop_table("alerts")
