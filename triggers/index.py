"""Which event triggers could care about an event, found from its name and resource id.

Exact names go in a dict and globs in a list; the answer for each event name is cached,
so the cost per event does not grow with automations that cannot match it (event names
repeat: a platform emits a few hundred distinct ones).

Within one name, a trigger whose `match` pins `prefect.resource.id` to exact values
(one automation per deployment, flow or table, all on the same event names) is filed
under those values: an event reaches the triggers pinned to its own resource id and
those not pinned, in the order of the full list, and no others. The pinned triggers it
skips could not have matched it; their mismatches are still recorded as the full scan
records them (see `triggers.budget`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import NamedTuple

from events.model import RESOURCE_ID
from triggers.automation import Automation
from triggers.compiled import GLOB_CHARS, CompiledTrigger
from triggers.identity import Composite
from triggers.matching import arms, expects, glob_matches
from triggers.model import EventTrigger, LabelSpec, Posture

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


def pinned_ids(match: LabelSpec) -> frozenset[str] | None:
    """The resource ids a `match` admits when it pins `prefect.resource.id` to exact
    values; None when any id could pass (no such label, a glob, or only `!` values)."""
    spec = match.get(RESOURCE_ID)
    if spec is None:
        return None
    values = [spec] if isinstance(spec, str) else spec
    positives = [v for v in values if not v.startswith("!")]
    # `!` values only narrow what the positives admit; a glob admits ids not listed.
    if not positives or not all(GLOB_CHARS.isdisjoint(v) for v in positives):
        return None
    return frozenset(positives)


class Group:
    """Candidates that ask the same of an event (same specs, `where` and enabled flag):
    one test answers for all of them."""

    __slots__ = ("compiled", "enabled", "pins", "position", "roles", "watches")

    def __init__(
        self, compiled: CompiledTrigger, enabled: bool, pins: frozenset[str] | None
    ) -> None:
        self.compiled = compiled
        self.enabled = enabled
        self.pins = pins  # the resource ids the group's `match` admits (None: any)
        self.position = 0  # in the full list of its event name
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
            # Same resource slot, same `match`: the pins are the group's.
            pins = pinned_ids(watch.trigger.match)
            group = groups[signature] = Group(c, watch.automation.enabled, pins)
        group.watches.append(watch)
        group.roles.append(Roles(expects(watch.trigger, name), arms(watch.trigger, name)))
    found = list(groups.values())
    for position, group in enumerate(found):
        group.position = position
    return found


class Candidates:
    """The groups of one event name: all of them in order, and which of them an event
    of a given resource id can match."""

    __slots__ = ("_by_id", "_pinned_to", "groups", "pinned", "unpinned")

    def __init__(self, groups: list[Group]) -> None:
        self.groups = groups
        self.unpinned = [g for g in groups if g.pins is None]
        self.pinned = [g for g in groups if g.pins is not None]
        self._pinned_to: dict[str, list[Group]] = {}
        for group in self.pinned:
            for resource_id in group.pins or ():
                self._pinned_to.setdefault(resource_id, []).append(group)
        self._by_id: dict[str, list[Group]] = {}

    def for_resource(self, resource_id: str | None) -> list[Group]:
        """The groups an event about this resource can match, in the full list's order."""
        if not self.pinned:
            return self.groups
        if resource_id is None:
            return self.unpinned
        found = self._by_id.get(resource_id)
        if found is None:
            pinned = self._pinned_to.get(resource_id)
            if not pinned:
                return self.unpinned  # an id no trigger pins: nothing to cache
            # Built once per pinned id, so bounded by the triggers, not by the events.
            found = self._by_id[resource_id] = sorted([*self.unpinned, *pinned], key=_position)
        return found


def _position(group: Group) -> int:
    return group.position


class CandidateIndex:
    """Event name -> the watches whose `expect` or `after` globs match it, grouped, and
    within a name by pinned resource id."""

    def __init__(self, watches: Iterable[Watch]) -> None:
        self._exact: dict[str, list[Watch]] = {}
        self._globs: list[tuple[str, Watch]] = []
        self._any: list[Watch] = []
        self._cache: dict[str, Candidates] = {}
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

    def of_name(self, name: str) -> Candidates:
        """The candidates of an event name, worked out once per name."""
        found = self._cache.get(name)
        if found is None:
            seen = dict.fromkeys(self._any)
            seen.update(dict.fromkeys(self._exact.get(name, ())))
            seen.update(dict.fromkeys(w for glob, w in self._globs if glob_matches(name, glob)))
            found = Candidates(_grouped(seen, name))
            if len(self._cache) >= CACHE_LIMIT:
                self._cache.clear()
            self._cache[name] = found
        return found

    def candidates(self, name: str) -> list[Group]:
        """The watches to test for an event of this name, each once, in groups."""
        return self.of_name(name).groups

    def watches(self, name: str, resource_id: str | None = None) -> list[Watch]:
        """The candidate watches for an event of this name (and, given, resource id)."""
        entry = self.of_name(name)
        groups = entry.groups if resource_id is None else entry.for_resource(resource_id)
        return [w for group in groups for w in group.watches]
