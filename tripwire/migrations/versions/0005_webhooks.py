"""Webhooks applied from files, and the requests they refused.

Revision ID: 0005_webhooks
Revises: 0004_slas
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005_webhooks"
down_revision = "0004_slas"
branch_labels = None
depends_on = None

labels = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
moment = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "webhooks",
        sa.Column("slug", sa.String(100), nullable=False),
        sa.Column("definition", labels, nullable=False),
        sa.Column("created", moment, nullable=False),
        sa.Column("updated", moment, nullable=False),
        sa.PrimaryKeyConstraint("slug", name="pk_webhooks"),
    )
    op.create_table(
        "webhook_rejections",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("slug", sa.String(100), nullable=False),
        sa.Column("received", moment, nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("field", sa.Text()),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("query", sa.Text(), nullable=False),
        sa.Column("headers", labels, nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_webhook_rejections"),
    )
    op.create_index("ix_webhook_rejections_slug_id", "webhook_rejections", ["slug", "id"])


def downgrade() -> None:
    op.drop_table("webhook_rejections")
    op.drop_table("webhooks")
