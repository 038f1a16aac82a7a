"""Does an event match a trigger? Labels, related resources, event names, `where`, and
the `for_each` key. Pure functions over plain objects: no I/O, no state.

Label values: an exact value, a shell-style glob (`*`, `?`, `[abc]`, as in Prefect), or
`!value` to exclude; in a list,
positive values are ORed and `!` values must all hold; a missing label never matches.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from fnmatch import fnmatchcase
from typing import Any

import jmespath.exceptions
import orjson
from jmespath.parser import ParsedResult

from events.filters import labels_match
from events.model import RESOURCE_ROLE, Event, Resource
from triggers.model import EventTrigger, LabelSpec, ResourceTrigger

RELATED_PREFIX = "related:"


def glob_matches(actual: str, pattern: str) -> bool:
    """Shell-style globs, case-sensitive, as Prefect matches triggers: `*`, `?`, `[abc]`."""
    return fnmatchcase(actual, pattern)


def resource_matches(resource: Mapping[str, str], spec: LabelSpec) -> bool:
    """Every label of the spec holds for the resource."""
    return labels_match(resource, spec, glob_matches)


def related_match(related: Iterable[Resource], specs: list[LabelSpec]) -> bool:
    """Each spec is satisfied by some related resource (no specs: always)."""
    related = list(related)
    return all(any(resource_matches(r, spec) for r in related) for spec in specs)


def name_matches(name: str, globs: Iterable[str]) -> bool:
    """The event name matches one of the globs."""
    return any(glob_matches(name, glob) for glob in globs)


def expects(trigger: EventTrigger, name: str) -> bool:
    """The trigger counts events of this name (empty `expect`: every event)."""
    return not trigger.expect or name_matches(name, trigger.expect)


def arms(trigger: EventTrigger, name: str) -> bool:
    """The event is one of the trigger's `after` events."""
    return name_matches(name, trigger.after)


def where_holds(trigger: EventTrigger, document: Mapping[str, Any]) -> bool:
    """The `where` expression is truthy on the event as JSON (no `where`: true)."""
    expression = trigger.where_expression
    return expression is None or expression_holds(expression, document)


def expression_holds(expression: ParsedResult, document: Mapping[str, Any]) -> bool:
    """A compiled `where` is truthy on the event as JSON (triggers, their compiled screens
    and SLAs all decide through here)."""
    try:
        return bool(expression.search(document))
    # jmespath raises TypeError for `<` between a string and a number (payload.rows < `100`
    # on rows: "many"): the condition does not hold, and must not stop evaluation.
    except (jmespath.exceptions.JMESPathError, TypeError):
        return False


def covers(trigger: ResourceTrigger, event: Event) -> bool:
    """The event's resources are ones this trigger watches (labels and related)."""
    return resource_matches(event.resource, trigger.match) and related_match(
        event.related, trigger.match_related
    )


def _label(
    resource: Mapping[str, str], related: Iterable[Mapping[str, str]], label: str
) -> str | None:
    if label.startswith(RELATED_PREFIX):
        role, _, name = label[len(RELATED_PREFIX) :].partition(":")
        for other in related:
            if other.get(RESOURCE_ROLE) == role and name in other:
                return other[name]
        return None
    return resource.get(label)


def label_value(event: Event, label: str) -> str | None:
    """A resource label, or `related:<role>:<label>` from the first related resource in
    that role."""
    return _label(event.resource, event.related, label)


def bucket_key(trigger: ResourceTrigger, event: Event) -> tuple[str, ...]:
    """The `for_each` key the event counts under; a missing label counts as empty,
    as in Prefect."""
    return tuple(label_value(event, label) or "" for label in trigger.for_each)


def key_text(values: Sequence[str]) -> str:
    """A `for_each` key as stored: its values as a JSON array."""
    return orjson.dumps(list(values)).decode()


def document_labels(labels: Sequence[str], document: Mapping[str, Any]) -> tuple[str, ...]:
    """The values of `labels` (as in `for_each`) in an event's JSON document; missing
    labels are empty."""
    resource, related = document["resource"], document.get("related") or ()
    return tuple(_label(resource, related, label) or "" for label in labels)


def _spec_text(spec: str | list[str]) -> str:
    return spec if isinstance(spec, str) else " or ".join(spec)


def why_not_covered(trigger: ResourceTrigger, event: Event) -> str | None:
    """In words, the first reason the event's resources fail the trigger (None: they pass)."""
    for label, spec in trigger.match.items():
        actual = event.resource.get(label)
        if actual is None:
            return f"label {label} is missing (wanted {_spec_text(spec)})"
        if not resource_matches({label: actual}, {label: spec}):
            return f"label {label} was {actual!r} not {_spec_text(spec)}"
    for related_spec in trigger.match_related:
        if not any(resource_matches(r, related_spec) for r in event.related):
            wanted = ", ".join(f"{k}={_spec_text(v)}" for k, v in related_spec.items())
            return f"no related resource has {wanted}"
    return None
