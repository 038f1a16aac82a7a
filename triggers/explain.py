"""What matching says about one event now, for when no decision about it was recorded
(decisions are sampled per batch, and an event of a name no trigger expects leaves none).
A metric trigger records its value against the threshold at each tick instead of a
decision per event; here it says whether the event feeds its metric."""

from __future__ import annotations

from typing import Any

from events.model import ReceivedEvent
from triggers.automation import Automation
from triggers.identity import event_triggers, metric_triggers
from triggers.matching import arms, expects, where_holds, why_not_covered
from triggers.metrics import state_change


def match_report(automation: Automation, event: ReceivedEvent) -> list[dict[str, Any]]:
    """One entry per event trigger: would the event reach its window, and if not, why."""
    document = event.model_dump(mode="json")
    report = []
    for metric, _ in metric_triggers(automation):
        change = state_change(document)
        if change is None:
            outcome, reason = "not-measured", f"{event.event} is not a flow-run state change"
        elif (problem := why_not_covered(metric, event)) is not None:
            outcome, reason = "unmatched", problem
        else:
            outcome, reason = (
                "measured",
                f"the event feeds the {metric.metric.name.value} metric ({change.name} of "
                f"{change.run}); each evaluation's value is in the decisions",
            )
        report.append(_entry(automation, str(metric.id), event, outcome, reason))
    for trigger, _parent in event_triggers(automation):
        if not expects(trigger, event.event) and not arms(trigger, event.event):
            names = ", ".join([*trigger.expect, *trigger.after])
            outcome, reason = "not-expected", f"{event.event} is not among {names}"
        elif (problem := why_not_covered(trigger, event)) is not None:
            outcome, reason = "unmatched", problem
        elif not where_holds(trigger, document):
            outcome, reason = "filtered", f"where was false: {trigger.where}"
        else:
            outcome, reason = (
                "matches",
                (
                    "the event matches this trigger; how it counted was not recorded "
                    "(decisions are sampled per batch)"
                ),
            )
        report.append(_entry(automation, str(trigger.id), event, outcome, reason))
    return report


def _entry(
    automation: Automation, trigger_id: str, event: ReceivedEvent, outcome: str, reason: str
) -> dict[str, Any]:
    """One entry, shaped like a stored decision (`recorded` false)."""
    return {
        "id": None,
        "recorded": False,
        "automation_id": str(automation.id),
        "trigger_id": trigger_id,
        "event_id": str(event.id),
        "event": event.event,
        "occurred": event.occurred.isoformat(),
        "decided": None,
        "outcome": outcome,
        "reason": reason,
    }
