"""Which event triggers could care about an event, found from its name alone.

Exact names go in a dict and globs in a list; the answer for each event name is cached,
so the cost per event does not grow with automations that cannot match it (event names
repeat: a platform emits a few hundred distinct ones).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from triggers.automation import Automation
from triggers.identity import Composite
from triggers.matching import glob_matches
from triggers.model import EventTrigger, Posture

GLOB_CHARS = frozenset("*?[")
CACHE_LIMIT = 50_000


@dataclass(frozen=True, eq=False)
class Watch:
    """One event trigger of one automation, ready to evaluate."""

    automation: Automation
    trigger: EventTrigger
    parent: Composite | None

    @property
    def id(self) -> str:
        return str(self.trigger.id)

    @property
    def automation_id(self) -> str:
        return str(self.automation.id)

    @property
    def reactive(self) -> bool:
        return self.trigger.posture is Posture.Reactive

    @property
    def immediate(self) -> bool:
        """Counts every event, whatever the window (Prefect: Reactive with within 0)."""
        return self.reactive and self.trigger.within == timedelta(0)


class CandidateIndex:
    """Event name -> the watches whose `expect` or `after` globs match it."""

    def __init__(self, watches: Iterable[Watch]) -> None:
        self._exact: dict[str, list[Watch]] = {}
        self._globs: list[tuple[str, Watch]] = []
        self._any: list[Watch] = []
        self._cache: dict[str, list[Watch]] = {}
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

    def candidates(self, name: str) -> list[Watch]:
        """The watches to test for an event of this name, each once."""
        found = self._cache.get(name)
        if found is None:
            seen = dict.fromkeys(self._any)
            seen.update(dict.fromkeys(self._exact.get(name, ())))
            seen.update(dict.fromkeys(w for glob, w in self._globs if glob_matches(name, glob)))
            found = list(seen)
            if len(self._cache) >= CACHE_LIMIT:
                self._cache.clear()
            self._cache[name] = found
        return found
