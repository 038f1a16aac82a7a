"""PostgreSQL: the related-resource indexes of `event_resources` end with `event_id`.

A page of a related-resource filter with no time range is read from `event_resources` in
page order, (occurred, id), across the day partitions (events/store.py). With `event_id`
in the index each day partition's scan is already in that order, so PostgreSQL merges
them and stops after a page; without it, it reads every related row of the resource and
sorts them. The new indexes replace the old ones (which they serve as well), so writes
keep two indexes. SQLite is left as it is: it reads those pages as before.

Revision ID: 0010_related_page_order
Revises: 0009_event_partitions
"""

from alembic import op

revision = "0010_related_page_order"
down_revision = "0009_event_partitions"
branch_labels = None
depends_on = None

COLUMNS = ("resource_id", "resource_role")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for column in COLUMNS:
        op.execute(
            f"CREATE INDEX ix_event_resources_{column}_occurred_event_id "
            f"ON event_resources ({column}, occurred, event_id)"
        )
        op.execute(f"DROP INDEX ix_event_resources_{column}_occurred")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for column in COLUMNS:
        op.execute(
            f"CREATE INDEX ix_event_resources_{column}_occurred "
            f"ON event_resources ({column}, occurred)"
        )
        op.execute(f"DROP INDEX ix_event_resources_{column}_occurred_event_id")
