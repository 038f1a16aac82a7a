"""Talking to a Prefect server's REST API: where it is, how to authenticate, how its
answers read (HTTP errors, Prefect's error bodies, orchestration results), and how to find
the object an action is about.

Endpoints and bodies follow Prefect 3.8's server (`prefect/server/api/`).
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote
from uuid import UUID

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationInfo, field_validator

from actions.errors import ActionFailed, ActionRetry
from actions.http import check, transport_error
from actions.model import (
    PauseDeployment,
    PauseWorkPool,
    PauseWorkQueue,
    ResumeDeployment,
    ResumeWorkPool,
    ResumeWorkQueue,
    RunDeployment,
)
from actions.request import ActionRequest
from events.model import RESOURCE_ID, RESOURCE_NAME

NO_SERVER = "no Prefect server configured: set TRIPWIRE_PREFECT_API_URL"


class PrefectConnection(BaseModel):
    """How to reach one Prefect API.

    Usage::

        PrefectConnection(api_url="http://prefect:4200/api")  # self-hosted, no auth
        PrefectConnection(api_url="http://prefect:4200/api", auth_string=SecretStr("u:p"))
        PrefectConnection(api_url="https://api.prefect.cloud/api/accounts/A/workspaces/W",
                          api_key=SecretStr("pnu_..."))  # UI: app.prefect.cloud/account/A/...
        PrefectConnection(api_url="http://10.0.0.5:4200/api", ui_url="https://prefect.example")
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    api_url: str = Field(description="The API root, e.g. http://prefect:4200/api.")
    api_key: SecretStr | None = Field(default=None, description="Prefect Cloud key (Bearer).")
    auth_string: SecretStr | None = Field(
        default=None, description="Self-hosted basic auth, 'user:pass'."
    )
    ui_url: str | None = Field(
        default=None,
        description="The Prefect UI that templates' ui_url filters link to; default: derived "
        "from api_url as Prefect does.",
    )

    @field_validator("api_url", "ui_url")
    @classmethod
    def _http_url(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"{info.field_name} must be an http(s) URL, got {value!r}")
        return value.rstrip("/")

    @property
    def ui(self) -> str:
        """The UI root links are made from: `ui_url`, or the one Prefect derives."""
        return self.ui_url or derived_ui_url(self.api_url)

    def headers(self) -> dict[str, str]:
        """The Authorization header; the auth string wins, as in Prefect's own client."""
        if self.auth_string is not None:
            token = base64.b64encode(self.auth_string.get_secret_value().encode()).decode()
            return {"Authorization": f"Basic {token}"}
        if self.api_key is not None:
            return {"Authorization": f"Bearer {self.api_key.get_secret_value()}"}
        return {}


class PrefectConnections(BaseModel):
    """The default Prefect server and any named ones actions pick with `connection:`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    default: PrefectConnection | None = None
    named: dict[str, PrefectConnection] = Field(default_factory=dict)

    def get(self, name: str | None) -> PrefectConnection:
        """The connection an action asked for; ActionFailed when it is not configured."""
        if name is None:
            if self.default is None:
                raise ActionFailed(NO_SERVER)
            return self.default
        try:
            return self.named[name]
        except KeyError:
            known = ", ".join(sorted(self.named)) or "none"
            raise ActionFailed(f"no Prefect connection named {name!r}; known: {known}") from None


CLOUD_API: Final = re.compile(r"^https://api[.\w]*\.prefect\.[^./]+/")


def derived_ui_url(api_url: str) -> str:
    """The UI Prefect derives from an API URL (its `ui_url` setting's default): the API
    root without `/api` when self-hosted; on Prefect Cloud, app. for api. and singular
    routes (`https://api.prefect.cloud/api/accounts/A/workspaces/W` →
    `https://app.prefect.cloud/account/A/workspace/W`)."""
    url = api_url.rstrip("/")
    if CLOUD_API.match(url):
        url = url.replace("https://api", "https://app", 1)
    url = url.removesuffix("/api").replace("/api/", "/")
    return url.replace("/accounts/", "/account/").replace("/workspaces/", "/workspace/")


def segment(value: str) -> str:
    """One path segment: names may hold '/', spaces and the like."""
    return quote(value, safe="")


class PrefectAPI:
    """One Prefect server over the worker's shared HTTP client."""

    def __init__(self, http: httpx.AsyncClient, connection: PrefectConnection) -> None:
        self.http = http
        self.url = connection.api_url
        self.headers = connection.headers()

    async def call(
        self, method: str, path: str, *, json: Any = None, missing: str | None = None
    ) -> httpx.Response:
        """Send one request; a 404 names `missing` when given, other errors map as usual."""
        what = f"Prefect {method} {path}"
        try:
            response = await self.http.request(
                method, self.url + path, json=json, headers=self.headers
            )
        except httpx.TransportError as exc:
            raise transport_error(exc, f"Prefect at {self.url}") from None
        if response.status_code == 404 and missing is not None:
            raise ActionFailed(f"{missing} not found on {self.url}", status_code=404)
        raise_for_status(response, what)
        return response

    async def fetch(
        self, method: str, path: str, *, json: Any = None, missing: str | None = None
    ) -> Any:
        """`call`, then the body as JSON."""
        response = await self.call(method, path, json=json, missing=missing)
        return response.json()


def error_detail(response: httpx.Response) -> str | None:
    """Prefect's reason from `{"detail": ...}` or `{"exception_message", "exception_detail"}`."""
    try:
        body = response.json()
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    detail = body.get("detail", body.get("exception_detail"))
    if isinstance(detail, list):  # validation errors: name the field of each
        parts = [
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}"
            for e in detail
            if isinstance(e, dict)
        ]
        detail = "; ".join(parts) or None
    message = body.get("exception_message")
    if message and detail:
        return f"{message} ({detail})"
    return str(message or detail) if (message or detail) else None


def raise_for_status(response: httpx.Response, what: str) -> None:
    """Like actions.http.check, with Prefect's own reason in the message."""
    if not response.is_success:
        check(response, what, error_detail(response))


def accepted_state(result: Any, what: str, ends: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The new state from an OrchestrationResult; REJECT/ABORT fail, WAIT retries.

    A REJECT that put the run in one of `ends` anyway counts as done: Prefect rejects
    CANCELLING for a run with nothing to stop and makes it CANCELLED instead.
    """
    status = result.get("status") if isinstance(result, dict) else None
    details = (result.get("details") if isinstance(result, dict) else None) or {}
    state: dict[str, Any] = (result.get("state") if isinstance(result, dict) else None) or {}
    reason = details.get("reason") or "no reason given"
    if status == "ACCEPT" or (status == "REJECT" and state.get("type") in ends):
        return state
    if status == "WAIT":
        delay = float(details.get("delay_seconds") or 0)
        raise ActionRetry(
            f"Prefect asked to wait {delay:g}s before it can {what}: {reason}", retry_after=delay
        )
    if status in ("REJECT", "ABORT"):
        raise ActionFailed(f"Prefect refused to {what} ({status}): {reason}")
    raise ActionFailed(f"Prefect answered {what} with an unknown result: {str(result)[:200]}")


# Finding targets, as Prefect's actions do (prefect/server/events/actions.py)


@dataclass(frozen=True)
class Target:
    """A Prefect object an action acts on: `kind` is the resource-id prefix."""

    kind: str
    id: UUID
    name: str | None = None

    @property
    def labels(self) -> dict[str, str]:
        """The object as event labels, for the executed event."""
        labels = {RESOURCE_ID: f"{self.kind}.{self.id}"}
        if self.name:
            labels[RESOURCE_NAME] = self.name
        return labels

    def __str__(self) -> str:
        return self.name or str(self.id)


def _id_of(resource_id: str, kind: str) -> UUID | None:
    prefix, _, raw = resource_id.rpartition(".")
    if prefix != kind:
        return None
    try:
        return UUID(raw)
    except ValueError:
        raise ActionFailed(f"{resource_id} does not end in an id, so no {kind} to act on") from None


def _first_of_kind(request: ActionRequest, kind: str) -> Target | None:
    # Prefect takes the first resource of the kind, the event's own resource first.
    event = request.triggering_event
    for resource in event.involved_resources() if event else ():
        found = _id_of(resource.id, kind)
        if found is not None:
            return Target(kind, found, resource.name)
    return None


def inferred(request: ActionRequest, kind: str) -> Target:
    """The first `kind` resource among the event's resource and related ones (as Prefect)."""
    if request.triggering_event is None:
        raise ActionFailed(
            f"source is inferred but the firing has no triggering event to take a {kind} from"
        )
    target = _first_of_kind(request, kind)
    if target is None:
        raise ActionFailed(
            f"source is inferred but the triggering event has no {kind}.* resource "
            "(looked at its resource and related resources)"
        )
    return target


def flow_run_of(request: ActionRequest) -> Target:
    """The flow run the firing is about: its for_each labels first (a proactive trigger's
    firing has no event), then the event, as Prefect's FlowRunAction does."""
    kind = "prefect.flow-run"
    labels = request.triggering_labels
    found = _id_of(labels.get(RESOURCE_ID, ""), kind)
    if found is not None:
        return Target(kind, found, labels.get(RESOURCE_NAME))
    target = _first_of_kind(request, kind)
    if target is None:
        where = (
            "the firing's labels"
            if request.triggering_event is None
            else ("the firing's labels and the triggering event's resource and related resources")
        )
        raise ActionFailed(f"no {kind}.* resource to act on (looked at {where})")
    return target


async def find_deployment(
    api: PrefectAPI,
    action: RunDeployment | PauseDeployment | ResumeDeployment,
    request: ActionRequest,
) -> Target:
    """The deployment by id, by flow/deployment name (or its name alone), or from the
    event."""
    kind = "prefect.deployment"
    if action.source == "inferred":
        return inferred(request, kind)
    if action.deployment_id is not None:
        return Target(kind, action.deployment_id)
    assert action.deployment is not None  # the model requires one of the two
    if "/" not in action.deployment:
        return await _deployment_named(api, action.deployment)
    flow, _, name = action.deployment.partition("/")
    found = await api.fetch(
        "GET",
        f"/deployments/name/{segment(flow)}/{segment(name)}",
        missing=f"deployment {action.deployment}",
    )
    return Target(kind, UUID(found["id"]), found["name"])


async def _deployment_named(api: PrefectAPI, name: str) -> Target:
    """The one deployment of that name, whatever its flow (a prefect.yaml names
    deployments without their flows); several flows' deployments of the name fail, as
    retrying cannot tell them apart."""
    found = await api.fetch(
        "POST", "/deployments/filter", json={"deployments": {"name": {"any_": [name]}}}
    )
    if not found:
        raise ActionFailed(f"deployment {name} not found on {api.url}", status_code=404)
    if len(found) > 1:
        ids = sorted({str(d["flow_id"]) for d in found})
        flows = await api.fetch("POST", "/flows/filter", json={"flows": {"id": {"any_": ids}}})
        names = sorted(str(f["name"]) for f in flows) or ids
        raise ActionFailed(
            f"several flows have a deployment named {name} ({', '.join(names)}) on "
            f"{api.url}: name it as flow/deployment, e.g. {names[0]}/{name}"
        )
    return Target("prefect.deployment", UUID(found[0]["id"]), found[0]["name"])


async def find_work_queue(
    api: PrefectAPI, action: PauseWorkQueue | ResumeWorkQueue, request: ActionRequest
) -> Target:
    """The work queue by id, by name (in a pool or alone), or from the event."""
    kind = "prefect.work-queue"
    if action.source == "inferred":
        return inferred(request, kind)
    if action.work_queue_id is not None:
        return Target(kind, action.work_queue_id)
    name = action.work_queue_name
    assert name is not None  # the model requires one of the two
    pool = action.work_pool_name
    if pool is not None:
        found = await api.fetch(
            "GET",
            f"/work_pools/{segment(pool)}/queues/{segment(name)}",
            missing=f"work queue {name} in work pool {pool}",
        )
        return Target(kind, UUID(found["id"]), found["name"])
    # Without a pool the name may be in several: the filter finds them all.
    queues = await api.fetch(
        "POST", "/work_queues/filter", json={"work_queues": {"name": {"any_": [name]}}}
    )
    if not queues:
        raise ActionFailed(f"work queue {name} not found on {api.url}")
    if len(queues) > 1:
        pools = ", ".join(sorted(str(q.get("work_pool_name")) for q in queues))
        raise ActionFailed(
            f"work queue {name} is in several work pools ({pools}): set work_pool_name"
        )
    return Target(kind, UUID(queues[0]["id"]), queues[0]["name"])


async def find_work_pool(
    api: PrefectAPI, action: PauseWorkPool | ResumeWorkPool, request: ActionRequest
) -> Target:
    """The work pool, with its name: Prefect's API addresses pools by name."""
    kind = "prefect.work-pool"
    if action.source == "inferred":
        target = inferred(request, kind)
        if target.name:
            return target
        pool_id = target.id
    elif action.work_pool_id is not None:
        pool_id = action.work_pool_id
    else:
        name = action.work_pool_name
        assert name is not None  # the model requires one of the two
        found = await api.fetch("GET", f"/work_pools/{segment(name)}", missing=f"work pool {name}")
        return Target(kind, UUID(found["id"]), found["name"])
    pools = await api.fetch(
        "POST", "/work_pools/filter", json={"work_pools": {"id": {"any_": [str(pool_id)]}}}
    )
    if not pools:
        raise ActionFailed(f"work pool {pool_id} not found on {api.url}")
    return Target(kind, pool_id, pools[0]["name"])
