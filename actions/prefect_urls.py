"""The template filters Prefect registers for automations, with the same names and meaning:
`ui_url` (the Prefect UI page of an object), `ui_resource_events_url` (the UI's events
page filtered to an object) and `flow_run_id` (a flow run id found in text).

The UI root comes from the Prefect connection the action uses (`ui_url`, or derived from
`api_url` as Prefect derives it); the runner puts it in the context under UI_ROOT, a key
templates cannot name. Without one, both URL filters give None, as Prefect's do when it
has no UI URL.

Usage::

    {{ flow_run|ui_url }}                 → http://prefect:4200/runs/flow-run/<id>
    {{ deployment|ui_resource_events_url }}
    {{ event.payload.body|flow_run_id }}  → the id in ".../flow-run/<id>", or None
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, Final
from urllib.parse import quote

from jinja2 import pass_context

from actions.context import PrefectObject, PrefectRef, kind_of
from events.model import ReceivedEvent, Resource

# Not an identifier: a template cannot read or shadow it.
UI_ROOT: Final = "prefect ui url"

# Prefect's UI routes (prefect.utilities.urls.UI_URL_FORMATS) for the kinds templates see.
# A concurrency limit in an event is a global (v2) one, which has no page of its own there.
UI_PATHS: Final = {
    "prefect.flow": "flows/flow/{}",
    "prefect.flow-run": "runs/flow-run/{}",
    "prefect.task-run": "runs/task-run/{}",
    "prefect.deployment": "deployments/deployment/{}",
    "prefect.work-pool": "work-pools/work-pool/{}",  # by name, not id
    "prefect.work-queue": "work-queues/work-queue/{}",
}
FLOW_RUN_ID: Final = re.compile(
    r"flow-run/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"
)


def _kind_id_name(obj: Any) -> tuple[str, str, str | None] | None:
    """The resource kind, id and name of a Prefect object, a label view or a resource."""
    if isinstance(obj, PrefectRef):
        return obj.kind, obj.id, obj.name
    if isinstance(obj, Resource):
        kind, _, object_id = obj.id.rpartition(".")
        return (kind, object_id, obj.name) if kind.startswith("prefect.") else None
    if isinstance(obj, PrefectObject):
        name = obj.get("name")
        return kind_of(obj), str(obj.get("id") or ""), name if isinstance(name, str) else None
    return None


def _root(context: Mapping[str, Any]) -> str | None:
    root = context.get(UI_ROOT)
    return root if isinstance(root, str) and root else None


@pass_context
def ui_url(context: Mapping[str, Any], obj: Any) -> str | None:
    """The Prefect UI page of a flow, flow run, task run, deployment, work pool or work
    queue (fetched, or as the event labels it), of such a resource, or of the event; None
    for anything else or without a UI root; "" for an object without an id, as Prefect."""
    root = _root(context)
    if root is None:
        return None
    if isinstance(obj, ReceivedEvent):
        return f"{root}/events/event/{obj.occurred:%Y-%m-%d}/{obj.id}"
    found = _kind_id_name(obj)
    if found is None or found[0] not in UI_PATHS:
        return None
    kind, object_id, name = found
    key = name if kind == "prefect.work-pool" else object_id
    if not key:
        return ""
    return f"{root}/{UI_PATHS[kind].format(quote(str(key), safe=''))}"


@pass_context
def ui_resource_events_url(context: Mapping[str, Any], obj: Any) -> str | None:
    """The UI's events page filtered to a Prefect object (fetched, or as the event labels
    it) or to a resource; None for anything else or without a UI root."""
    root = _root(context)
    found = _kind_id_name(obj)
    if root is None or found is None or not found[1]:
        return None
    kind, object_id, _ = found
    return f"{root}/events?resource={quote(f'{kind}.{object_id}', safe='')}"


def flow_run_id(text: Any) -> str | None:
    """The first flow run id after `flow-run/` in `text` (a PR body, a UI link), or None."""
    if not text or not isinstance(text, str):
        return None
    match = FLOW_RUN_ID.search(text)
    return match.group(1) if match else None


FILTERS: Final[dict[str, Callable[..., str | None]]] = {
    "ui_url": ui_url,
    "ui_resource_events_url": ui_resource_events_url,
    "flow_run_id": flow_run_id,
}
# Filters that need the UI root, so the connection, even when no object is fetched.
URL_FILTERS: Final = frozenset({"ui_url", "ui_resource_events_url"})
