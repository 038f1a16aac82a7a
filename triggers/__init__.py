"""Triggers: automations, their definitions and matching, the evaluator with its durable
state, decisions, replay, and the automations API."""

from triggers.automation import Automation
from triggers.errors import InvalidDefinition, TriggersError
from triggers.evaluator import Evaluator, Subjects
from triggers.firing import Firing, Message
from triggers.matching import (
    arms,
    bucket_key,
    covers,
    expects,
    glob_matches,
    label_value,
    related_match,
    resource_matches,
    where_holds,
    why_not_covered,
)
from triggers.model import (
    CompoundTrigger,
    EventTrigger,
    MetricQuery,
    MetricTrigger,
    Posture,
    SequenceTrigger,
    Trigger,
)
from triggers.pipeline import Pipeline
from triggers.replay import ReplayFiring, ReplayReport, replay
from triggers.repository import (
    AutomationExists,
    AutomationNotFound,
    AutomationStore,
    StoredAutomation,
)
from triggers.results import Decision, Outcome, Result

__all__ = [
    "Automation",
    "AutomationExists",
    "AutomationNotFound",
    "AutomationStore",
    "CompoundTrigger",
    "Decision",
    "Evaluator",
    "EventTrigger",
    "Firing",
    "InvalidDefinition",
    "Message",
    "MetricQuery",
    "MetricTrigger",
    "Outcome",
    "Pipeline",
    "Posture",
    "ReplayFiring",
    "ReplayReport",
    "Result",
    "SequenceTrigger",
    "StoredAutomation",
    "Subjects",
    "Trigger",
    "TriggersError",
    "arms",
    "bucket_key",
    "covers",
    "expects",
    "glob_matches",
    "label_value",
    "related_match",
    "replay",
    "resource_matches",
    "where_holds",
    "why_not_covered",
]
