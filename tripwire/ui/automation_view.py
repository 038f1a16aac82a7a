"""An automation's page: its definition, trigger in words, decisions, firings with the
outcome of each action, and (after a replay) what would have fired."""

from __future__ import annotations

from collections import OrderedDict
from datetime import timedelta
from typing import Any

from fastapi import Request
from fastapi.responses import Response

from events import clock
from triggers.decisions import read_decisions
from triggers.repository import StoredAutomation
from tripwire.ui import readings
from tripwire.ui.access import Visitor
from tripwire.ui.charts import sparkline
from tripwire.ui.context import Dashboard
from tripwire.ui.rendering import definition_yaml
from tripwire.ui.words import trigger_words

DAY = timedelta(hours=24)
DECISIONS_SHOWN = 50
FIRING_ACTIONS_SHOWN = 100


def group_firings(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Ledger rows (newest first) grouped by firing, each with its actions in order."""
    grouped: OrderedDict[str, dict[str, Any]] = OrderedDict()
    for entry in entries:
        firing = grouped.setdefault(
            entry["firing_id"],
            {"id": entry["firing_id"], "created": entry["created"], "actions": []},
        )
        firing["actions"].append(entry)
    for firing in grouped.values():
        firing["actions"].sort(key=lambda e: e["action_index"])
    return list(grouped.values())


async def automation_context(board: Dashboard, stored: StoredAutomation) -> dict[str, Any]:
    """What an automation's page shows, beside a replay's result."""
    engine = board.engine
    key = str(stored.id)
    now = clock.now()
    decisions = await read_decisions(engine.db, key, last=DECISIONS_SHOWN)
    fired = await readings.firings(engine.ledger_db, now - DAY, now, [key])
    hourly = fired.per_automation.get(key, [0] * len(fired.starts))
    entries = await engine.acting.ledger.list(automation=key, limit=FIRING_ACTIONS_SHOWN)
    definition = definition_yaml(stored.automation)
    return {
        "stored": stored,
        "automation": stored.automation,
        "trigger": trigger_words(stored.automation.trigger),
        "definition": definition,
        "decisions": list(reversed(decisions)),
        "firings": group_firings(entries),
        "spark": sparkline(hourly, label="firings per hour, last 24 hours", width=240, height=40),
        "fired_24h": sum(hourly),
    }


async def show_automation(
    board: Dashboard, request: Request, visitor: Visitor, stored: StoredAutomation, **extra: Any
) -> Response:
    context = await automation_context(board, stored)
    return board.pages.render(request, visitor, "automation.html", **context, **extra)
