"""Prefect's objects for templates, fetched as Prefect's own actions fetch them
(`_relevant_native_objects` in prefect/server/events/actions.py): when an action's
templates name `flow_run`, `flow`, `deployment`, `task_run`, `work_pool`, `work_queue`,
`concurrency_limit` or `variables`, each named object is read once per attempt from the
Prefect API, all at once, within FETCH_SECONDS. The object is the first resource of its
kind on the triggering event (its own resource first, then the related ones); `variables`
are the workspace's variables, name -> value.

An object that cannot be read (no connection, deleted, Prefect away) leaves the event's
label view in its place and one warning per attempt: the action still runs, and a field
the labels do not have fails the render as any undefined name does.

Usage::

    context = template_context(request)
    context.update(await prefect_context(request, book, templates, http))
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Final
from uuid import UUID

import httpx
from jinja2 import nodes
from jinja2.exceptions import TemplateSyntaxError

from actions.connections import ConnectionBook
from actions.context import PrefectObject, ref_of
from actions.errors import ActionFailed, ActionRetry
from actions.prefect_api import PrefectConnection
from actions.prefect_urls import UI_ROOT, URL_FILTERS
from actions.request import ActionRequest
from actions.templating import Templates
from events.model import ReceivedEvent, Resource
from events.sandbox import MAX_CACHED
from events.templating import PARSER

log = logging.getLogger("tripwire.actions")

FETCH_SECONDS: Final = 5.0  # a notification with less detail beats one late
VARIABLES_PAGE: Final = 200  # Prefect reads its variables 200 at a time, up to 1,000
MAX_VARIABLES: Final = 1000


@dataclass(frozen=True)
class _Reads:
    """How the API returns one kind: the requests whose answers merge into the object."""

    kind: str  # the resource-id prefix's last part, e.g. flow-run
    paths: tuple[str, ...]  # GET paths with {id}; a POST filter when `filter` is set
    filter: str | None = None


# The endpoints Prefect's OrchestrationClient reads these with (prefect/server/api/clients.py).
OBJECTS: Final = {
    "flow_run": _Reads("flow-run", ("/flow_runs/{id}",)),
    "task_run": _Reads("task-run", ("/task_runs/{id}",)),
    "flow": _Reads("flow", ("/flows/{id}",)),
    "deployment": _Reads("deployment", ("/deployments/{id}",)),
    "work_pool": _Reads("work-pool", ("/work_pools/filter",), filter="work_pools"),
    "work_queue": _Reads("work-queue", ("/work_queues/{id}", "/work_queues/{id}/status")),
    "concurrency_limit": _Reads("concurrency-limit", ("/v2/concurrency_limits/{id}",)),
}
VARIABLES: Final = "variables"
NAMES: Final = frozenset({*OBJECTS, VARIABLES})


class _Unavailable(Exception):
    """Why one object was not read (no secrets: a status or an exception's type)."""


@lru_cache(maxsize=MAX_CACHED)
def names_in(source: str) -> frozenset[str]:
    """The objects `source` names (as variables, not attributes) and the URL filters it
    uses, as Prefect's `matching_types_in_templates` finds them."""
    if "{" not in source:
        return frozenset()
    try:
        tree = PARSER.parse(source)
    except TemplateSyntaxError:
        return frozenset()
    found = {n.name for n in tree.find_all(nodes.Name) if n.ctx == "load" and n.name in NAMES}
    found |= {f.name for f in tree.find_all(nodes.Filter) if f.name in URL_FILTERS}
    return frozenset(found)


def _sources(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _sources(item)
    elif isinstance(value, list):
        for item in value:
            yield from _sources(item)


def named(action: Any) -> frozenset[str]:
    """What the action's template fields name of NAMES and URL_FILTERS."""
    found: set[str] = set()
    for field in getattr(type(action), "template_fields", ()):
        for source in _sources(getattr(action, field)):
            found |= names_in(source)
    return frozenset(found)


def first_of_kind(event: ReceivedEvent, kind: str) -> Resource | None:
    """The first `prefect.<kind>.<id>` among the event's resource and related resources,
    whatever its role (Prefect's `_first_resource_of_kind`)."""
    for resource in event.involved_resources():
        if resource.id.rpartition(".")[0] == f"prefect.{kind}":
            return resource
    return None


async def prefect_context(
    request: ActionRequest,
    book: ConnectionBook | None,
    templates: Templates,
    http: httpx.AsyncClient,
    *,
    timeout: float = FETCH_SECONDS,
) -> dict[str, Any]:
    """What goes over `template_context` for one attempt: the named objects as Prefect's
    API has them, `variables`, and the UI root the URL filters use; {} (and no request)
    when the templates name none of them."""
    names = named(request.action)
    if not names:
        return {}
    context: dict[str, Any] = {}
    if VARIABLES in names:
        context[VARIABLES] = {}
    connection, problem = await _connection(request, book, templates)
    if connection is None:
        _warn(request, templates, [problem or "no Prefect connection"], names)
        return context
    context[UI_ROOT] = connection.ui
    assert book is not None  # a connection comes from a book
    reader = _Reader(book.http or http, connection, timeout)
    jobs: dict[str, Callable[[], Awaitable[Any]]] = {}
    event = request.triggering_event
    for name in sorted(names & OBJECTS.keys()):
        resource = first_of_kind(event, OBJECTS[name].kind) if event is not None else None
        if resource is not None and _uuid(resource.id) is not None:
            jobs[name] = _object_job(reader, name, resource)
    if VARIABLES in names:
        jobs[VARIABLES] = reader.variables
    found, problems = await _gather(jobs, timeout)
    context.update(found)
    if problems:
        _warn(request, templates, problems, frozenset(jobs))
    return context


async def _connection(
    request: ActionRequest, book: ConnectionBook | None, templates: Templates
) -> tuple[PrefectConnection | None, str | None]:
    """The action's `connection:` (when it has the field), else the default server."""
    name = getattr(request.action, "connection", None)
    if book is None or (name is None and book.settings.default is None):
        return None, "no Prefect connection configured (TRIPWIRE_PREFECT_API_URL)"
    if name is None:
        return book.settings.default, None
    try:
        return await book.get(str(name), templates), None
    except (ActionFailed, ActionRetry) as exc:
        return None, exc.message


def _uuid(resource_id: str) -> UUID | None:
    try:
        return UUID(resource_id.rpartition(".")[2])
    except ValueError:
        return None


def _object_job(reader: _Reader, name: str, resource: Resource) -> Callable[[], Awaitable[Any]]:
    reads = OBJECTS[name]

    async def job() -> PrefectObject:
        api = await reader.object(reads, resource.id.rpartition(".")[2])
        return PrefectObject.of(api, ref_of(resource, reads.kind))

    return job


async def _gather(
    jobs: Mapping[str, Callable[[], Awaitable[Any]]], timeout: float
) -> tuple[dict[str, Any], list[str]]:
    """Run the jobs at once for at most `timeout`; what they found, and what went wrong."""
    if not jobs:
        return {}, []
    tasks = {name: asyncio.ensure_future(job()) for name, job in jobs.items()}
    done, pending = await asyncio.wait(tasks.values(), timeout=timeout)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    found: dict[str, Any] = {}
    problems: list[str] = []
    for name, task in tasks.items():
        if task not in done:
            problems.append(f"{name}: no answer within {timeout:g}s")
        elif isinstance(error := task.exception(), _Unavailable):
            problems.append(f"{name}: {error}")
        elif error is not None:
            raise error  # a bug, not Prefect's answer: the runner records it
        else:
            found[name] = task.result()
    return found, problems


class _Reader:
    """GETs and filters on one Prefect API, each within the fetch's time limit."""

    def __init__(self, http: httpx.AsyncClient, connection: PrefectConnection, timeout: float):
        self.http = http
        self.url = connection.api_url
        self.headers = connection.headers()
        self.timeout = timeout

    async def _json(self, method: str, path: str, body: Any = None) -> Any:
        try:
            response = await self.http.request(
                method, self.url + path, json=body, headers=self.headers, timeout=self.timeout
            )
        except httpx.HTTPError as exc:
            raise _Unavailable(f"Prefect unreachable ({type(exc).__name__})") from None
        if response.status_code == 404:
            raise _Unavailable("not found (404): deleted, or on another server")
        if not response.is_success:
            raise _Unavailable(f"Prefect answered {response.status_code}")
        try:
            return response.json()
        except ValueError:
            raise _Unavailable("Prefect's answer is not JSON") from None

    async def object(self, reads: _Reads, object_id: str) -> dict[str, Any]:
        """The object with this id; the answers of several reads merged (a work queue and
        its status)."""
        merged: dict[str, Any] = {}
        if reads.filter is not None:
            body = {reads.filter: {"id": {"any_": [object_id]}}}
            answers = [await self._json("POST", reads.paths[0], body)]
        else:
            answers = await asyncio.gather(
                *(self._json("GET", path.format(id=object_id)) for path in reads.paths)
            )
        for answer in answers:
            if isinstance(answer, list):  # a filter: 0 or 1 objects
                if not answer:
                    raise _Unavailable("not found: deleted, or on another server")
                answer = answer[0]
            if not isinstance(answer, dict):
                raise _Unavailable("Prefect's answer is not an object")
            merged.update(answer)
        return merged

    async def variables(self) -> dict[str, Any]:
        """The workspace's variables, name -> value, a page at a time as Prefect reads them."""
        variables: dict[str, Any] = {}
        for offset in range(0, MAX_VARIABLES, VARIABLES_PAGE):
            body = {"limit": VARIABLES_PAGE, "offset": offset}
            page = await self._json("POST", "/variables/filter", body)
            if not isinstance(page, list):
                raise _Unavailable("Prefect's answer is not a list")
            variables.update(
                {v["name"]: v.get("value") for v in page if isinstance(v, dict) and "name" in v}
            )
            if len(page) < VARIABLES_PAGE:
                break
        return variables


def _warn(
    request: ActionRequest, templates: Templates, problems: list[str], names: frozenset[str]
) -> None:
    log.warning(
        "action %s (%s): templates see the event's labels instead of Prefect's objects (%s): %s",
        request.id,
        request.action.type,
        ", ".join(sorted(names)),
        templates.secrets.redact("; ".join(problems)),
    )
