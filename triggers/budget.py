"""The decision budget: which decisions a batch records (every firing, a few of the
rest per automation, per batch and per second), and the screening of candidates, whose
reasons for not matching are worded only while the budget would still record them.

The candidate index leaves out the triggers pinned to other resource ids than an
event's. The full scan would have found them unmatched, and recorded that while their
budget lasted: so the ones whose budget may still record are screened as before, in
their place in the full list, until they fall silent (at most a few times per batch)."""

from __future__ import annotations

from typing import Any

from events import clock
from events.model import RESOURCE_ID, ReceivedEvent
from triggers.compiled import EventScreen, Screens
from triggers.index import CandidateIndex, Candidates, Group, Roles, Watch
from triggers.matching import why_not_covered
from triggers.results import ALWAYS_RECORDED, Decision, Outcome

Candidate = tuple[ReceivedEvent, Watch, str, Roles]  # an event, a watch it passes, its key


class Sampling:
    """At most `per_second` non-firing decisions per automation per second of the clock,
    over all batches (None: no limit).

    Under a steady load the worker handles many small batches, and a budget per batch
    alone would record (and word, and write) a decision per automation per batch: at
    1,000 events/s that cost more than evaluating the events. Firings are always kept.
    """

    def __init__(self, per_second: int | None) -> None:
        self.per_second = per_second
        self._second = 0
        self._spent: dict[str, int] = {}

    def start(self) -> None:
        """A batch begins: a new second starts every automation's count again."""
        second = int(clock.now().timestamp())
        if second != self._second:
            self._second, self._spent = second, {}

    def allows(self, automation_id: str) -> bool:
        """Whether this second still has room for one of the automation's decisions."""
        return self.per_second is None or self._spent.get(automation_id, 0) < self.per_second

    def spend(self, automation_id: str) -> None:
        """Count one recorded decision of the automation against this second."""
        if self.per_second is not None:
            self._spent[automation_id] = self._spent.get(automation_id, 0) + 1


class Recorder:
    """The decisions of one batch: every firing, and at most `per_batch` others per
    automation, within what `sampling` allows (a reason is worded only while it would
    still be recorded)."""

    def __init__(self, per_batch: int, decisions: list[Decision], sampling: Sampling) -> None:
        self.per_batch = per_batch
        self.decisions = decisions
        self.sampling = sampling
        sampling.start()
        self._left: dict[str, int] = {}
        self._worded: dict[Group, int] = {}  # events whose mismatch was worded, per group
        self._silent: set[Group] = set()  # groups whose mismatches go unrecorded
        # Per event name: its pinned groups that are not silent yet.
        self._unsilenced: dict[Candidates, list[Group]] = {}

    def records(self, automation_id: str, outcome: Outcome) -> bool:
        """Whether a decision of this outcome would still be recorded in this batch."""
        return outcome in ALWAYS_RECORDED or (
            self._left.get(automation_id, self.per_batch) > 0
            and self.sampling.allows(automation_id)
        )

    def decide(self, decision: Decision) -> None:
        """Record the decision, if the budget still has room for it."""
        automation_id = decision.automation_id
        if not self.records(automation_id, decision.outcome):
            return
        if decision.outcome not in ALWAYS_RECORDED:
            self._left[automation_id] = self._left.get(automation_id, self.per_batch) - 1
            self.sampling.spend(automation_id)
        self.decisions.append(decision)

    def screen(self, group: Group, screen: EventScreen) -> list[tuple[Watch, str, Roles]]:
        """The watches of the group the event concerns, with their bucket keys. The
        others get a decision, worded only while this batch still records them."""
        if not group.enabled:
            outcome = Outcome.paused
        elif not screen.covers(group.compiled):
            outcome = Outcome.unmatched
        elif not screen.where(group.compiled):
            outcome = Outcome.filtered
        else:
            return [
                (w, screen.key(w.for_each), roles)
                for w, roles in zip(group.watches, group.roles, strict=True)
            ]
        if group in self._silent:
            return []
        worded = self._worded.get(group, 0)
        if worded >= self.per_batch or not any(
            self.records(w.automation_id, outcome) for w in group.watches
        ):
            # Budgets only shrink within a batch: no later event of it is recorded either.
            self._silent.add(group)
            return []
        self._worded[group] = worded + 1
        if worded + 1 >= self.per_batch:
            self._silent.add(group)  # what its next visit would find: no need to visit
        # A group shares its specs and `where`, so one reason serves all its watches.
        event, trigger = screen.event, group.watches[0].trigger
        if outcome is Outcome.paused:
            reason = "the automation is paused"
        elif outcome is Outcome.unmatched:
            reason = why_not_covered(trigger, event) or "labels did not match"
        else:
            reason = f"where was false: {trigger.where}"
        for watch in group.watches:
            self.decide(
                Decision(
                    automation_id=watch.automation_id,
                    trigger_id=watch.id,
                    outcome=outcome,
                    reason=reason,
                    event=event,
                )
            )
        return []

    def screen_event(
        self, index: CandidateIndex, screens: Screens, document: dict[str, Any]
    ) -> list[Candidate]:
        """The candidates an event passes, with their bucket keys."""
        entry = index.of_name(document["event"])
        if not entry.groups:
            return []
        resource_id = document["resource"].get(RESOURCE_ID)
        groups = entry.for_resource(resource_id)
        if len(groups) < len(entry.groups):
            groups = self._with_skipped(entry, groups, resource_id)
        if not groups:
            return []
        screen = screens.screen(document)
        return [
            (screen.event, watch, key, roles)
            for group in groups
            for watch, key, roles in self.screen(group, screen)
        ]

    def _with_skipped(
        self, entry: Candidates, groups: list[Group], resource_id: str | None
    ) -> list[Group]:
        """The groups the index found for the event, and in their places the pinned
        groups it skipped that are not silent yet: screening those records what the full
        scan would have recorded (their mismatch), and nothing else."""
        unsilenced = self._unsilenced.get(entry)
        if unsilenced is None:
            unsilenced = self._unsilenced[entry] = list(entry.pinned)
        silent = self._silent
        unsilenced[:] = [g for g in unsilenced if g not in silent]
        skipped = [g for g in unsilenced if g.pins is None or resource_id not in g.pins]
        if not skipped:
            return groups
        return sorted([*groups, *skipped], key=lambda g: g.position)
