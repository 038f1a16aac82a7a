"""Alembic environment: runs on the connection tripwire hands over."""

from __future__ import annotations

from alembic import context

import actions.tables  # noqa: F401  (registers its tables on the shared metadata)
import alerts.tables  # noqa: F401
import events.webhooks.tables  # noqa: F401
import sla.tables  # noqa: F401
import triggers.tables  # noqa: F401
from events.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through tripwire.database.migrate (or `tripwire migrate`)")

context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
