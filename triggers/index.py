"""Which event triggers could care about an event, found from its name alone.

Exact names go in a dict and globs in a list; the answer for each event name is cached,
so the cost per event does not grow with automations that cannot match it (event names
repeat: a platform emits a few hundred distinct ones).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import NamedTuple

from triggers.automation import Automation
from triggers.compiled import GLOB_CHARS, CompiledTrigger
from triggers.identity import Composite
from triggers.matching import arms, expects, glob_matches
from triggers.model import EventTrigger, Posture

CACHE_LIMIT = 50_000


class Watch:
    """One event trigger of one automation, ready to evaluate (what the hot path reads is
    computed once here)."""

    __slots__ = (
        "automation",
        "automation_id",
        "compiled",
        "for_each",
        "id",
        "immediate",
        "parent",
        "reactive",
        "trigger",
    )

    def __init__(
        self,
        automation: Automation,
        trigger: EventTrigger,
        parent: Composite | None,
        compiled: CompiledTrigger | None = None,
    ) -> None:
        self.automation = automation
        self.trigger = trigger
        self.parent = parent
        self.compiled = compiled or CompiledTrigger(None, (), None)
        self.id = str(trigger.id)
        self.for_each = tuple(trigger.for_each)
        self.automation_id = str(automation.id)
        self.reactive = trigger.posture is Posture.Reactive
        # Counts every event, whatever the window (Prefect: Reactive with within 0).
        self.immediate = self.reactive and trigger.within == timedelta(0)


class Group:
    """Candidates that ask the same of an event (same specs, `where` and enabled flag):
    one test answers for all of them."""

    __slots__ = ("compiled", "enabled", "roles", "watches")

    def __init__(self, compiled: CompiledTrigger, enabled: bool) -> None:
        self.compiled = compiled
        self.enabled = enabled
        self.watches: list[Watch] = []
        self.roles: list[Roles] = []  # per watch: the event name is expected / arms it


class Roles(NamedTuple):
    """What an event name is to one trigger, worked out once per name."""

    expected: bool
    arming: bool


def _grouped(watches: Iterable[Watch], name: str) -> list[Group]:
    groups: dict[tuple[object, ...], Group] = {}
    for watch in watches:
        c = watch.compiled
        signature = (c.resource, c.related, c.where, watch.automation.enabled)
        group = groups.get(signature)
        if group is None:
            group = groups[signature] = Group(c, watch.automation.enabled)
        group.watches.append(watch)
        group.roles.append(Roles(expects(watch.trigger, name), arms(watch.trigger, name)))
    return list(groups.values())


class CandidateIndex:
    """Event name -> the watches whose `expect` or `after` globs match it, grouped."""

    def __init__(self, watches: Iterable[Watch]) -> None:
        self._exact: dict[str, list[Watch]] = {}
        self._globs: list[tuple[str, Watch]] = []
        self._any: list[Watch] = []
        self._cache: dict[str, list[Group]] = {}
        for watch in watches:
            trigger = watch.trigger
            if not trigger.expect:
                self._any.append(watch)  # an empty expect counts every event
                continue
            for name in dict.fromkeys([*trigger.expect, *trigger.after]):
                if GLOB_CHARS.isdisjoint(name):
                    self._exact.setdefault(name, []).append(watch)
                else:
                    self._globs.append((name, watch))

    def candidates(self, name: str) -> list[Group]:
        """The watches to test for an event of this name, each once, in groups."""
        found = self._cache.get(name)
        if found is None:
            seen = dict.fromkeys(self._any)
            seen.update(dict.fromkeys(self._exact.get(name, ())))
            seen.update(dict.fromkeys(w for glob, w in self._globs if glob_matches(name, glob)))
            found = _grouped(seen, name)
            if len(self._cache) >= CACHE_LIMIT:
                self._cache.clear()
            self._cache[name] = found
        return found

    def watches(self, name: str) -> list[Watch]:
        """The candidate watches for an event of this name."""
        return [w for group in self.candidates(name) for w in group.watches]
