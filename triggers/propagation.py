"""Compound and sequence triggers: a child's firing handed up the tree of triggers.

A compound trigger fires when enough of its children fired (`require`: any, all or a
number), a sequence when all of them fired in order; both within `within` when set.
Child firings wait in the database (`triggers.state`) until their parent is complete.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from sqlalchemy.ext.asyncio import AsyncConnection

from triggers import state
from triggers.firing import Firing, firing_id
from triggers.identity import Composite
from triggers.model import CompoundTrigger
from triggers.results import Outcome, span_text
from triggers.state import ChildFiring

Act = Callable[[Firing], tuple[Outcome, str]]  # what happens to a firing at the top


async def propagate(
    conn: AsyncConnection,
    parents: Mapping[str, Composite | None],
    parent: Composite | None,
    firing: Firing,
    act: Act,
) -> tuple[Outcome, str]:
    """Hand a firing up the tree (`parents`: each trigger's parent, by trigger id); at
    the top, `act`. Returns what happened, in words."""
    if parent is None:
        return act(firing)
    parent_id = str(parent.id)
    grand = parents.get(parent_id)
    needed = _needed(parent)
    if needed == 1:
        why = f"{_kind(parent)} trigger: a child fired ({firing.why})"
        lifted = _lifted(firing, parent_id, [str(firing.id)], why)
        return await propagate(conn, parents, grand, lifted, act)
    await state.lock(conn, [f"composite:{parent_id}"])
    keep_since = firing.triggered - parent.within if parent.within is not None else None
    firings = await state.record_child_firing(
        conn,
        parent_id,
        str(firing.automation.id),
        ChildFiring(
            child_id=firing.trigger_id,
            firing_id=str(firing.id),
            triggered=firing.triggered,
            event=firing.event.model_dump_json() if firing.event else None,
        ),
        keep_since,
    )
    within = f" within {span_text(parent.within)}" if parent.within else ""
    if not _ready(parent, firings):
        return Outcome.counted, (
            f"child trigger fired ({firing.why}); {_kind(parent)} trigger has "
            f"{len(firings)} of {needed} child firings{within}"
        )
    await state.clear_child_firings(conn, parent_id, [f.firing_id for f in firings])
    why = f"{_kind(parent)} trigger: {len(firings)} of {needed} children fired{within}"
    ids = sorted(f.firing_id for f in firings)
    return await propagate(conn, parents, grand, _lifted(firing, parent_id, ids, why), act)


def _lifted(child: Firing, parent_id: str, child_ids: list[str], why: str) -> Firing:
    """The parent trigger's firing, made of its children's (the latest one's event)."""
    return Firing(
        id=firing_id(parent_id, *child_ids),
        trigger_id=parent_id,
        automation=child.automation,
        triggered=child.triggered,
        labels=child.labels,
        event=child.event,
        why=why,
    )


def _kind(trigger: Composite) -> str:
    return "compound" if isinstance(trigger, CompoundTrigger) else "sequence"


def _needed(trigger: Composite) -> int:
    if isinstance(trigger, CompoundTrigger):
        if trigger.require == "any":
            return 1
        if trigger.require == "all":
            return len(trigger.triggers)
        return trigger.require
    return len(trigger.triggers)


def _ready(trigger: Composite, firings: list[ChildFiring]) -> bool:
    if isinstance(trigger, CompoundTrigger):
        return len({f.child_id for f in firings}) >= _needed(trigger)
    order = [str(t.id) for t in trigger.triggers]
    fired = sorted(
        firings,
        key=lambda f: (f.triggered, order.index(f.child_id) if f.child_id in order else len(order)),
    )
    return [f.child_id for f in fired] == order
