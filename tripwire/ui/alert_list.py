"""The alerts list: open alerts first (firing, then acknowledged), then resolved ones,
each state newest firing first, paged by keyset across the states.

A page's cursor names the state and the (last fired, id) of its last alert, so the next
page continues in that state and moves on to the next state when it runs out; each page
reads at most one query per state.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from alerts.model import Alert, AlertState
from alerts.store import AlertStore
from events.timestamps import as_utc

OPEN_FIRST = (AlertState.firing, AlertState.acknowledged, AlertState.resolved)


@dataclass(frozen=True)
class Cursor:
    """Where the next page starts: right after this alert of this state."""

    state: AlertState
    last_fired: datetime
    alert_id: str

    @classmethod
    def after(cls, alert: Alert) -> Cursor:
        return cls(alert.state, alert.last_fired, alert.id)

    @classmethod
    def parse(cls, text: str) -> Cursor | None:
        """A cursor from a "Next" link ("state|last fired|id"); None when it is not one,
        and the list starts from the top."""
        state, last_fired, alert_id = [*text.split("|", 2), "", ""][:3]
        if state not in AlertState.__members__ or not alert_id:
            return None
        try:
            return cls(AlertState(state), as_utc(datetime.fromisoformat(last_fired)), alert_id)
        except ValueError:
            return None

    def text(self) -> str:
        return f"{self.state.value}|{self.last_fired.isoformat()}|{self.alert_id}"


async def alerts_page(
    store: AlertStore,
    states: tuple[AlertState, ...],
    *,
    name: str | None,
    cursor: Cursor | None,
    limit: int,
) -> tuple[list[Alert], Cursor | None]:
    """Up to `limit` alerts in `states`, in that order, from `cursor` on; and the cursor of
    the page after, if there is one."""
    if cursor is not None and cursor.state in states:
        states = states[states.index(cursor.state) :]
    else:
        cursor = None
    found: list[Alert] = []
    for state in states:
        before = (cursor.last_fired, cursor.alert_id) if cursor and cursor.state is state else None
        wanted = limit + 1 - len(found)  # one more than fits: is there a page after?
        found += await store.page(state=state.value, name=name, before=before, limit=wanted)
        if len(found) > limit:
            return found[:limit], Cursor.after(found[limit - 1])
    return found, None
