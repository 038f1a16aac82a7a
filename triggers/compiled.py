"""Label specs and `where` expressions compiled once and shared, so testing an event
against a hundred candidate triggers costs a few dictionary lookups each.

Triggers often repeat the same spec (`prefect.resource.id: prefect.flow-run.*`): each
distinct spec is compiled once, gets a slot, and is evaluated at most once per event.
The rules are those of `triggers.matching` (tests hold both to the same answers).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from fnmatch import translate
from typing import Any

import orjson
from jmespath.parser import ParsedResult

from events.model import ReceivedEvent
from triggers.matching import document_labels, expression_holds, key_text
from triggers.model import EventTrigger, LabelSpec, ResourceTrigger

GLOB_CHARS = frozenset("*?[")


def _pattern(globs: list[str]) -> re.Pattern[str] | None:
    if not globs:
        return None
    return re.compile("|".join(f"(?:{translate(g)})" for g in globs))


class ValueTest:
    """One label's values: exact or glob, ORed; `!` values must all hold."""

    __slots__ = ("exact", "negated", "negated_globs", "positive", "positive_globs")

    def __init__(self, spec: str | list[str]) -> None:
        values = [spec] if isinstance(spec, str) else list(spec)
        positives = [v for v in values if not v.startswith("!")]
        negatives = [v[1:] for v in values if v.startswith("!")]
        self.positive = bool(positives)
        self.exact = frozenset(v for v in positives if GLOB_CHARS.isdisjoint(v))
        self.positive_globs = _pattern([v for v in positives if not GLOB_CHARS.isdisjoint(v)])
        self.negated = frozenset(v for v in negatives if GLOB_CHARS.isdisjoint(v))
        self.negated_globs = _pattern([v for v in negatives if not GLOB_CHARS.isdisjoint(v)])

    def __call__(self, actual: str | None) -> bool:
        if actual is None:
            return False
        if actual in self.negated or (self.negated_globs and self.negated_globs.match(actual)):
            return False
        if not self.positive or actual in self.exact:
            return True
        return bool(self.positive_globs and self.positive_globs.match(actual))


class LabelsTest:
    """Every label of a spec holds for a resource."""

    __slots__ = ("tests",)

    def __init__(self, spec: LabelSpec) -> None:
        self.tests = tuple((label, ValueTest(values)) for label, values in spec.items())

    def __call__(self, resource: Mapping[str, str]) -> bool:
        get = resource.get
        for label, test in self.tests:  # noqa: SIM110 (a loop: no generator per call)
            if not test(get(label)):
                return False
        return True


class CompiledTrigger:
    """The slots of one trigger's resource spec, related specs and `where`."""

    __slots__ = ("related", "resource", "where")

    def __init__(self, resource: int | None, related: tuple[int, ...], where: int | None) -> None:
        self.resource = resource
        self.related = related
        self.where = where


class Screens:
    """All distinct specs of the loaded triggers."""

    def __init__(self) -> None:
        self._labels: list[LabelsTest] = []
        self._wheres: list[ParsedResult] = []
        self._slots: dict[str, int] = {}

    def _slot(self, kind: str, spec: Any, make: Any, into: list[Any]) -> int:
        key = kind + orjson.dumps(spec, option=orjson.OPT_SORT_KEYS).decode()
        slot = self._slots.get(key)
        if slot is None:
            slot = self._slots[key] = len(into)
            into.append(make())
        return slot

    def compile(self, trigger: ResourceTrigger) -> CompiledTrigger:
        resource = (
            self._slot("r", trigger.match, lambda: LabelsTest(trigger.match), self._labels)
            if trigger.match
            else None
        )
        related = tuple(
            self._slot("r", spec, lambda spec=spec: LabelsTest(spec), self._labels)
            for spec in trigger.match_related
        )
        where: int | None = None
        if isinstance(trigger, EventTrigger) and trigger.where_expression is not None:
            expression = trigger.where_expression
            where = self._slot("w", trigger.where, lambda: expression, self._wheres)
        return CompiledTrigger(resource, related, where)

    def screen(self, document: dict[str, Any]) -> EventScreen:
        return EventScreen(self, document)


class EventScreen:
    """One event's answers, each spec evaluated at most once. It works on the event's JSON
    document; the validated model is built only when a trigger needs it."""

    __slots__ = (
        "_document",
        "_event",
        "_keys",
        "_labels",
        "_related",
        "_resource",
        "_where",
        "_wheres",
    )

    def __init__(self, screens: Screens, document: dict[str, Any]) -> None:
        self._labels = screens._labels
        self._wheres = screens._wheres
        self._document = document
        self._event: ReceivedEvent | None = None
        self._resource: dict[int, bool] = {}
        self._related: dict[int, bool] = {}
        self._where: dict[int, bool] = {}
        self._keys: dict[tuple[str, ...], str] = {}

    @property
    def document(self) -> dict[str, Any]:
        return self._document

    @property
    def event(self) -> ReceivedEvent:
        if self._event is None:
            self._event = ReceivedEvent.from_stored(self._document)
        return self._event

    def covers(self, compiled: CompiledTrigger) -> bool:
        """The event's resource and related resources satisfy the trigger's specs."""
        slot = compiled.resource
        if slot is not None:
            hit = self._resource.get(slot)
            if hit is None:
                hit = self._resource[slot] = self._labels[slot](self._document["resource"])
            if not hit:
                return False
        for slot in compiled.related:
            hit = self._related.get(slot)
            if hit is None:
                hit = self._related[slot] = self._any_related(self._labels[slot])
            if not hit:
                return False
        return True

    def key(self, for_each: tuple[str, ...]) -> str:
        """The bucket key of the event for these `for_each` labels (triggers share them)."""
        key = self._keys.get(for_each)
        if key is None:
            key = self._keys[for_each] = key_text(document_labels(for_each, self._document))
        return key

    def _any_related(self, test: LabelsTest) -> bool:
        for resource in self._document.get("related") or ():  # noqa: SIM110 (as above)
            if test(resource):
                return True
        return False

    def where(self, compiled: CompiledTrigger) -> bool:
        """The trigger's `where` holds (no `where`: true)."""
        slot = compiled.where
        if slot is None:
            return True
        hit = self._where.get(slot)
        if hit is None:
            hit = self._where[slot] = expression_holds(self._wheres[slot], self._document)
        return hit


__all__: Sequence[str] = ["EventScreen", "Screens"]
