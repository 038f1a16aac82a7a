"""Triggers: trigger definitions and matching (evaluation and durable state follow)."""

from triggers.automation import Automation
from triggers.errors import InvalidDefinition, TriggersError
from triggers.loading import DefinitionError, Definitions, load_paths, load_text
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
)
from triggers.model import (
    CompoundTrigger,
    EventTrigger,
    Posture,
    SequenceTrigger,
    Trigger,
)

__all__ = [
    "Automation",
    "CompoundTrigger",
    "DefinitionError",
    "Definitions",
    "EventTrigger",
    "InvalidDefinition",
    "Posture",
    "SequenceTrigger",
    "Trigger",
    "TriggersError",
    "arms",
    "bucket_key",
    "covers",
    "expects",
    "glob_matches",
    "label_value",
    "load_paths",
    "load_text",
    "related_match",
    "resource_matches",
    "where_holds",
]
