"""The dashboard benchmark's data: a million events over the retention week, 1,000
automations with their decisions, the action ledger, SLAs with their windows and webhooks
with refused requests, generated from one seed and written through the engine's own stores
(see `bench.ui`, which times the pages on it)."""

from __future__ import annotations

import asyncio
import bisect
import fnmatch
import random
import string
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

import orjson
from pydantic import TypeAdapter
from sqlalchemy.ext.asyncio import AsyncEngine

from actions.ledger import Status
from actions.request import ActionRequest, AutomationRef, FiringState
from actions.tables import action_ledger
from bench.harness import log
from events.model import ReceivedEvent
from events.store import EventStore
from events.webhooks.model import WebhookDefinition
from events.webhooks.rejections import Rejection
from events.webhooks.store import WebhookStore
from sla import windows as sla_windows_store
from sla.evaluator import Watched
from sla.model import SLA, DeadlineSLA, DurationSLA
from sla.store import SLAStore, fingerprint, sla_id
from triggers.automation import Automation
from triggers.firing import firing_id
from triggers.identity import event_triggers
from triggers.matching import expression_holds, why_not_covered
from triggers.model import EventTrigger, Posture
from triggers.repository import AutomationStore, StoredAutomation
from triggers.results import Decision, Outcome, instant_text, span_text
from triggers.tables import decisions
from tripwire.settings import Settings

# --- parameters ---------------------------------------------------------------------------

SEED = 1  # the same parameters seed the same data (times move with the clock)
RETENTION: timedelta = Settings.model_fields["event_retention"].default
CHUNK = 5_000  # events generated, validated and inserted at a time
TRANSACTION = 100_000  # events per seeding transaction
DECISIONS_PER_AUTOMATION = 20
LEDGER_ROWS_PER_AUTOMATION = 20
SLA_COUNT = 50
KEYS_PER_SLA = 20
WEBHOOK_COUNT = 20
REJECTIONS_PER_WEBHOOK = (2, 6)
PAUSED_SHARE = 0.1

# --- names --------------------------------------------------------------------------------

FLOW_KINDS = ("etl", "dbt", "ml", "report", "ingest", "sync", "export", "backfill", "quality")
FLOW_SUBJECTS = (
    "orders", "sales", "customers", "inventory", "payments", "shipments", "ads", "clickstream",
    "ledger", "crm", "finance", "warehouse", "users", "products", "returns", "marketing",
    "support", "risk", "pricing", "partners", "forecast", "churn", "billing",
)  # fmt: skip
FLOWS = tuple(f"{kind}-{subject}" for kind in FLOW_KINDS for subject in FLOW_SUBJECTS)[:200]
DAGS = tuple(
    f"{step}_{subject}" for step in ("load", "transform", "publish") for subject in FLOW_SUBJECTS
)[:50]
DAG_TAGS = ("finance", "marketing", "core", "hourly", "daily", "pii")
MODELS = tuple(
    f"{layer}_{subject}" for layer in ("stg", "fct", "dim") for subject in FLOW_SUBJECTS
)[:40]
REPOS = ("acme/etl", "acme/dbt", "acme/infra", "acme/ml", "acme/dashboards", "acme/airflow")
ADJECTIVES = ("didactic", "rainbow", "tuscan", "amber", "brisk", "calm", "daring", "eager")
ANIMALS = ("bulldog", "jaybird", "guppy", "otter", "lynx", "heron", "marmot", "newt")
FLOW_ERRORS = (
    "ValueError: too few rows",
    "TimeoutError: the warehouse did not answer within 300s",
    "KeyError: 'customer_id'",
    "ConnectionError: connection reset by peer",
    "MemoryError: the worker ran out of memory",
)
WEBHOOK_SLUGS = (
    "github-etl", "github-infra", "stripe", "backups", "dbt-cloud", "airbyte", "fivetran",
    "sentry", "datadog", "pagerduty", "segment", "hubspot", "shopify", "zendesk", "jira",
    "gitlab", "argo", "snowflake-alerts", "monte-carlo", "census",
)  # fmt: skip
RUN = {"prefect.resource.id": "prefect.flow-run.*"}
DAG_RUN = {"prefect.resource.id": "airflow.dag-run.*"}
STATE_TYPES = {
    "Late": "SCHEDULED",
    "Pending": "PENDING",
    "Running": "RUNNING",
    "Completed": "COMPLETED",
    "Failed": "FAILED",
}


def object_id(kind: str, name: str) -> str:
    """A flow's or deployment's resource id: one per name, as in Prefect."""
    return f"prefect.{kind}.{uuid5(NAMESPACE_URL, f'tripwire-bench-ui/{kind}/{name}')}"


def uuid7_at(moment: datetime, rng: random.Random) -> str:
    """A UUIDv7 of `moment` (time-ordered, as producers make them), random bits from `rng`."""
    ms = int(moment.timestamp() * 1000)
    value = (ms << 80) | (0x7 << 76) | (rng.getrandbits(12) << 64) | (0b10 << 62)
    return str(UUID(int=value | rng.getrandbits(62)))


def popularity(count: int) -> list[float]:
    """Cumulative weights under which the first names are much busier than the last (a
    few flows run every few minutes, most a few times a day)."""
    weights, total = [], 0.0
    for rank in range(count):
        total += 1 / (rank + 1) ** 0.8
        weights.append(total)
    return weights


# --- events -------------------------------------------------------------------------------


@dataclass
class Run:
    """A flow run or DAG run under way: its resource, related resources, the states it
    has still to pass and its previous event (Prefect's `follows`)."""

    resource: dict[str, str]
    related: list[dict[str, str]]
    states: list[str]
    started: datetime | None = None
    previous_state: str | None = None
    previous_event: str | None = None


class EventStream:
    """Events in time order over [start, end): each is the next state of one of the runs
    under way (so a run's events are tens of seconds apart, interleaved with others), or
    a webhook-ish event. Not thread-safe: one chunk at a time."""

    PREFECT_RUNS_UNDER_WAY = 48
    AIRFLOW_RUNS_UNDER_WAY = 16

    def __init__(self, count: int, start: datetime, end: datetime, seed: int = SEED) -> None:
        self.rng = random.Random(seed)
        self.start = start
        self.step = (end - start) / max(count, 1)
        self.made = 0
        self.flow_weights = popularity(len(FLOWS))
        self.dag_weights = popularity(len(DAGS))
        self.prefect: list[Run] = []
        self.airflow: list[Run] = []
        alphabet = string.ascii_letters + string.digits
        self.customers = ["cus_" + "".join(self.rng.choices(alphabet, k=14)) for _ in range(500)]

    def chunk(self, size: int) -> list[dict[str, Any]]:
        """The next `size` events, as JSON documents."""
        found = []
        for _ in range(size):
            moment = self.start + self.step * (self.made + self.rng.random())
            self.made += 1
            draw = self.rng.random()
            if draw < 0.7:
                found.append(self._prefect(moment))
            elif draw < 0.9:
                found.append(self._airflow(moment))
            else:
                found.append(self._other(moment))
        return found

    def _event(
        self,
        moment: datetime,
        name: str,
        resource: dict[str, str],
        related: list[dict[str, str]],
        payload: dict[str, Any],
        follows: str | None = None,
    ) -> dict[str, Any]:
        received = moment + timedelta(milliseconds=5 + 200 * self.rng.random())
        return {
            "id": uuid7_at(moment, self.rng),
            "occurred": moment.isoformat(),
            "received": received.isoformat(),
            "event": name,
            "resource": resource,
            "related": related,
            "payload": payload,
            "follows": follows,
        }

    # Prefect: Late (sometimes), Pending, Running, then Completed or Failed.

    def _new_flow_run(self) -> Run:
        rng = self.rng
        flow = rng.choices(FLOWS, cum_weights=self.flow_weights)[0]
        states = ["Late"] if rng.random() < 0.06 else []
        states += ["Pending", "Running", "Failed" if rng.random() < 0.12 else "Completed"]
        run_id = str(UUID(int=rng.getrandbits(128), version=4))
        return Run(
            resource={
                "prefect.resource.id": f"prefect.flow-run.{run_id}",
                "prefect.resource.name": f"{rng.choice(ADJECTIVES)}-{rng.choice(ANIMALS)}",
            },
            related=[
                {
                    "prefect.resource.id": object_id("flow", flow),
                    "prefect.resource.role": "flow",
                    "prefect.resource.name": flow,
                },
                {
                    "prefect.resource.id": object_id("deployment", flow),
                    "prefect.resource.role": "deployment",
                    "prefect.resource.name": f"{flow}-prod",
                },
            ],
            states=states,
        )

    def _next_run(self, runs: list[Run], size: int, new: Callable[[], Run]) -> tuple[int, Run]:
        while len(runs) < size:
            runs.append(new())
        index = self.rng.randrange(len(runs))
        return index, runs[index]

    def _prefect(self, moment: datetime) -> dict[str, Any]:
        index, run = self._next_run(self.prefect, self.PREFECT_RUNS_UNDER_WAY, self._new_flow_run)
        state = run.states.pop(0)
        state_type = STATE_TYPES[state]
        message = (
            f"Flow run encountered an exception: {self.rng.choice(FLOW_ERRORS)}"
            if state == "Failed"
            else ""
        )
        runs = "0" if state in ("Late", "Pending") else "1"  # Prefect's run count
        resource = {
            **run.resource,
            "prefect.run-count": runs,
            "prefect.state-message": message,
            "prefect.state-name": state,
            "prefect.state-timestamp": moment.isoformat(),
            "prefect.state-type": state_type,
        }
        previous = run.previous_state
        validated: dict[str, str] = {"type": state_type, "name": state}
        if message:
            validated["message"] = message
        payload = {
            "intended": {"from": STATE_TYPES[previous] if previous else None, "to": state_type},
            "initial_state": (
                {"type": STATE_TYPES[previous], "name": previous} if previous else None
            ),
            "validated_state": validated,
        }
        event = self._event(
            moment, f"prefect.flow-run.{state}", resource, run.related, payload, run.previous_event
        )
        run.previous_state, run.previous_event = state, event["id"]
        if not run.states:
            del self.prefect[index]
        return event

    # Airflow: running, then success or failed, as the listener in tripwire-client sends.

    def _new_dag_run(self) -> Run:
        rng = self.rng
        dag = rng.choices(DAGS, cum_weights=self.dag_weights)[0]
        tags = sorted(rng.sample(DAG_TAGS, rng.randint(0, 2)))
        related = [
            {
                "prefect.resource.id": f"airflow.dag.{dag}",
                "prefect.resource.role": "dag",
                "prefect.resource.name": dag,
            }
        ]
        related += [
            {"prefect.resource.id": f"airflow.tag.{tag}", "prefect.resource.role": "tag"}
            for tag in tags
        ]
        final = "failed" if rng.random() < 0.1 else "success"
        # The resource's labels are made at its first event, which names the run.
        return Run(resource={"airflow.dag_id": dag}, related=related, states=["running", final])

    def _airflow(self, moment: datetime) -> dict[str, Any]:
        index, run = self._next_run(self.airflow, self.AIRFLOW_RUNS_UNDER_WAY, self._new_dag_run)
        state = run.states.pop(0)
        dag = run.resource["airflow.dag_id"]
        if run.started is None:
            run.started = moment
            kind = "manual" if self.rng.random() < 0.1 else "scheduled"
            run.resource["airflow.run_id"] = f"{kind}__{moment.isoformat(timespec='seconds')}"
        run_id = run.resource["airflow.run_id"]
        hour = run.started.replace(minute=0, second=0, microsecond=0)
        done = state != "running"
        payload = {
            "dag_id": dag,
            "run_id": run_id,
            "state": state,
            "run_type": run_id.partition("__")[0],
            "logical_date": hour.isoformat(),
            "data_interval_start": (hour - timedelta(hours=1)).isoformat(),
            "data_interval_end": hour.isoformat(),
            "start_date": run.started.isoformat(),
            "end_date": moment.isoformat() if done else None,
            "duration": round((moment - run.started).total_seconds(), 3) if done else None,
            "reason": "task_failure" if state == "failed" else None,
        }
        if state == "failed":
            payload["error"] = "task_failure"
        resource = {
            "prefect.resource.id": f"airflow.dag-run.{dag}.{run_id}",
            "prefect.resource.name": run_id,
            "airflow.dag_id": dag,
            "airflow.run_id": run_id,
        }
        if done:
            del self.airflow[index]
        return self._event(moment, f"airflow.dag-run.{state}", resource, run.related, payload)

    # The rest: webhooks from GitHub and others, dbt, Stripe.

    def _other(self, moment: datetime) -> dict[str, Any]:
        rng = self.rng
        draw = rng.random()
        if draw < 0.35:
            repo = rng.choice(REPOS)
            branch = "main" if rng.random() < 0.4 else f"feature/{rng.choice(FLOW_SUBJECTS)}"
            payload: dict[str, Any] = {
                "ref": f"refs/heads/{branch}",
                "pusher": {"name": rng.choice(ANIMALS)},
                "head_commit": {
                    "message": f"Update {rng.choice(FLOWS)}",
                    "id": f"{rng.getrandbits(160):040x}",
                },
                "repository": {"full_name": repo},
            }
            resource = {"prefect.resource.id": f"github.repo.{repo}", "prefect.resource.name": repo}
            return self._event(moment, "github.push", resource, [], payload)
        if draw < 0.6:
            slug = rng.choice(WEBHOOK_SLUGS)
            resource = {"prefect.resource.id": f"tripwire.webhook.{slug}"}
            payload = {
                "bytes": rng.randint(100, 50_000),
                "status": rng.choice(("ok", "ok", "error")),
            }
            return self._event(moment, f"webhook.{slug}.received", resource, [], payload)
        if draw < 0.85:
            model = rng.choice(MODELS)
            resource = {"prefect.resource.id": f"dbt.model.{model}", "prefect.resource.name": model}
            payload = {"rows": 0 if rng.random() < 0.05 else rng.randint(1, 2_000_000)}
            return self._event(moment, "dbt.model.refreshed", resource, [], payload)
        customer = rng.choice(self.customers)
        name = "stripe.invoice.paid" if rng.random() < 0.9 else "stripe.invoice.payment_failed"
        payload = {"amount_due": rng.randint(500, 500_000), "currency": "eur"}
        resource = {"prefect.resource.id": f"stripe.customer.{customer}"}
        return self._event(moment, name, resource, [], payload)


RECEIVED_EVENTS: TypeAdapter[list[ReceivedEvent]] = TypeAdapter(list[ReceivedEvent])


def encoded(documents: list[dict[str, Any]]) -> list[bytes]:
    """The documents as the engine stores them: validated as ReceivedEvents (so every one
    is an event the API would have accepted) and encoded as the engine encodes them."""
    return [
        e.model_dump_json().encode() for e in RECEIVED_EVENTS.validate_json(orjson.dumps(documents))
    ]


def subjects(document: dict[str, Any]) -> list[str]:
    """What an event is about, as automations pick it: the names of its related
    resources (flow, deployment, DAG), or its resource id when it has none."""
    related = document.get("related") or ()
    names = [r["prefect.resource.name"] for r in related if "prefect.resource.name" in r]
    return names or [document["resource"]["prefect.resource.id"]]


class Sample:
    """Stored events kept to hang decisions and action requests on: a reservoir (uniform
    over the 7 days) per event name and subject, so that a flow that runs twice a day
    has its events too, and one per event name, to draw events an automation does not
    match. Kept as stored bodies, parsed when used."""

    PER_SUBJECT = 40
    PER_NAME = 200

    def __init__(self, seed: int = SEED) -> None:
        self.rng = random.Random(seed)
        self.by_subject: dict[tuple[str, str], list[bytes]] = {}
        self.by_name: dict[str, list[bytes]] = {}
        self.seen: Counter[tuple[str, str] | str] = Counter()
        self.parsed: dict[bytes, tuple[dict[str, Any], ReceivedEvent]] = {}

    def _keep(self, kept: list[bytes], key: tuple[str, str] | str, body: bytes, cap: int) -> None:
        self.seen[key] += 1
        if len(kept) < cap:
            kept.append(body)
        else:  # reservoir sampling (Vitter's algorithm R)
            index = self.rng.randrange(self.seen[key])
            if index < cap:
                kept[index] = body

    def offer(self, document: dict[str, Any], body: bytes) -> None:
        name = document["event"]
        self._keep(self.by_name.setdefault(name, []), name, body, self.PER_NAME)
        for subject in subjects(document):
            key = (name, subject)
            self._keep(self.by_subject.setdefault(key, []), key, body, self.PER_SUBJECT)

    def names(self, globs: Sequence[str]) -> list[str]:
        return [n for n in self.by_name if any(fnmatch.fnmatchcase(n, g) for g in globs)]

    def event(self, body: bytes) -> tuple[dict[str, Any], ReceivedEvent]:
        """A kept event as a JSON document and as a ReceivedEvent (parsed once)."""
        found = self.parsed.get(body)
        if found is None:
            document = orjson.loads(body)
            found = self.parsed[body] = (document, ReceivedEvent.from_stored(document))
        return found

    def about(self, globs: Sequence[str], subject: str | None) -> list[bytes]:
        """Kept events of these names about `subject` (of any subject when None)."""
        if subject is None:
            return self.of(globs)
        names = self.names(globs)
        return [body for name in names for body in self.by_subject.get((name, subject), ())]

    def of(self, globs: Sequence[str]) -> list[bytes]:
        """Kept events of these names, whatever they are about."""
        return [body for name in self.names(globs) for body in self.by_name[name]]


async def seed_events(db: AsyncEngine, count: int, now: datetime) -> Sample:
    """`count` events over the retention period up to `now`, in transactions of
    TRANSACTION events. The next chunk is built (and sampled) in a thread while one is
    inserted: the driver releases the GIL while SQLite or the network works."""
    stream = EventStream(count, now - RETENTION, now)
    store = EventStore(db)
    sample = Sample()
    started, made, written = time.monotonic(), 0, 0

    def build(size: int) -> list[bytes]:
        documents = stream.chunk(size)
        bodies = encoded(documents)
        for document, body in zip(documents, bodies, strict=True):
            sample.offer(document, body)
        return bodies

    async def next_chunk() -> list[bytes]:
        nonlocal made
        size = min(CHUNK, count - made)
        made += size
        return await asyncio.to_thread(build, size) if size > 0 else []

    pending = asyncio.ensure_future(next_chunk())
    while written < count:
        async with db.begin() as conn:
            for _ in range(TRANSACTION // CHUNK):
                bodies = await pending
                pending = asyncio.ensure_future(next_chunk())
                await store.insert(conn, bodies)
                written += len(bodies)
                if written >= count:
                    break
        rate = written / max(time.monotonic() - started, 1e-9)
        log(f"events: {written:,} of {count:,} stored ({rate:,.0f}/s)")
    await pending  # an empty chunk: nothing was left to build
    return sample


# --- automations --------------------------------------------------------------------------


def _flow_related(flow: str) -> dict[str, str]:
    return {"prefect.resource.role": "flow", "prefect.resource.name": flow}


def _slack(text_: str) -> dict[str, Any]:
    return {
        "type": "send-slack",
        "webhook_url": "{{ secret('SLACK_WEBHOOK_URL') }}",
        "text": text_,
    }


def _actions(rng: random.Random, flow: str | None, prefect_run: bool) -> list[dict[str, Any]]:
    """One or two actions, most of them notifications, as people write them."""
    about = "{{ event.resource['prefect.resource.name'] }}"
    choices: list[dict[str, Any]] = [
        _slack(f"{{{{ automation.name }}}} fired on {about}"),
        _slack(f"{about}: {{{{ event.event }}}} at {{{{ event.occurred }}}}"),
        {
            "type": "call-webhook",
            "url": "https://ops.example.com/hooks/tripwire",
            "json": {"automation": "{{ automation.name }}", "resource": about},
        },
        {
            "type": "send-notification",
            "url": "{{ secret('PAGERDUTY_APPRISE_URL') }}",
            "subject": "{{ automation.name }}",
            "body": f"{about} needs a look",
        },
        {
            "type": "emit-event",
            "event": "ops.alert.raised",
            "resource": {"prefect.resource.id": "ops.alert.{{ automation.name }}"},
            "payload": {"about": about},
        },
        {"type": "do-nothing"},
    ]
    if flow is not None:
        choices.append(
            {"type": "run-deployment", "deployment": f"{flow}/{flow}-prod", "parameters": {}}
        )
    if prefect_run:
        choices.append({"type": "change-flow-run-state", "state": "CANCELLED", "message": "stuck"})
    weights = [30, 10, 15, 10, 5, 3, *([10] if flow else []), *([4] if prefect_run else [])]
    picked = rng.choices(choices, weights=weights, k=1 if rng.random() < 0.7 else 2)
    return [dict(action) for action in picked]


def _prefect_trigger(rng: random.Random, flow: str, kind: int) -> tuple[str, dict[str, Any]]:
    """A trigger on a flow's runs: kinds 0-4."""
    related = _flow_related(flow)
    if kind == 0:
        threshold = rng.randint(2, 5)
        within = rng.choice(("10m", "30m", "1h"))
        trigger = {
            "match": RUN,
            "match_related": related,
            "expect": ["prefect.flow-run.Failed"],
            "for_each": ["related:flow:prefect.resource.name"],
            "threshold": threshold,
            "within": within,
        }
        if rng.random() < 0.4:
            trigger["where"] = "payload.validated_state.type == 'FAILED'"
        return f"{flow}-keeps-failing", trigger
    if kind == 1:
        return f"{flow}-failed", {
            "match": RUN,
            "match_related": related,
            "expect": ["prefect.flow-run.Failed"],
            "for_each": ["prefect.resource.id"],
            "threshold": 1,
            "within": "10m",
        }
    if kind == 2:
        return f"{flow}-run-not-completed", {
            "match": RUN,
            "match_related": related,
            "after": ["prefect.flow-run.Running"],
            "expect": ["prefect.flow-run.Completed"],
            "for_each": ["prefect.resource.id"],
            "posture": "Proactive",
            "threshold": 1,
            "within": rng.choice(("1h", "2h", "4h")),
        }
    if kind == 3:
        return f"{flow}-no-completion-today", {
            "match": RUN,
            "match_related": related,
            "expect": ["prefect.flow-run.Completed"],
            "for_each": ["related:flow:prefect.resource.name"],
            "posture": "Proactive",
            "threshold": 1,
            "within": "1d",
        }
    return f"{flow}-runs-late", {
        "match": RUN,
        "match_related": {
            "prefect.resource.role": "deployment",
            "prefect.resource.name": f"{flow}-prod",
        },
        "expect": ["prefect.flow-run.Late"],
        "for_each": ["related:deployment:prefect.resource.name"],
        "threshold": rng.randint(2, 4),
        "within": "1h",
    }


def _airflow_trigger(rng: random.Random, dag: str, kind: int) -> tuple[str, dict[str, Any]]:
    """A trigger on a DAG's runs: kinds 0-2."""
    related = {"prefect.resource.role": "dag", "prefect.resource.name": dag}
    if kind == 0:
        return f"{dag}-dag-failed", {
            "match": DAG_RUN,
            "match_related": related,
            "expect": ["airflow.dag-run.failed"],
            "for_each": ["prefect.resource.id"],
            "threshold": 1,
            "within": "10m",
        }
    if kind == 1:
        return f"{dag}-keeps-failing", {
            "match": DAG_RUN,
            "match_related": related,
            "expect": ["airflow.dag-run.failed"],
            "for_each": ["related:dag:prefect.resource.name"],
            "threshold": 3,
            "within": "6h",
        }
    return f"{dag}-run-too-long", {
        "match": DAG_RUN,
        "match_related": related,
        "after": ["airflow.dag-run.running"],
        "expect": ["airflow.dag-run.success", "airflow.dag-run.failed"],
        "for_each": ["prefect.resource.id"],
        "posture": "Proactive",
        "threshold": 1,
        "within": rng.choice(("1h", "2h")),
    }


def _other_trigger(rng: random.Random, kind: int) -> tuple[str, dict[str, Any]]:
    """A trigger on GitHub, dbt or webhook events: kinds 0-2."""
    if kind == 0:
        repo = rng.choice(REPOS)
        return f"{repo.replace('/', '-')}-main-pushed", {
            "match": {"prefect.resource.id": f"github.repo.{repo}"},
            "expect": ["github.push"],
            "where": "payload.ref == 'refs/heads/main'",
            "threshold": 1,
            "within": "0s",
        }
    if kind == 1:
        model = rng.choice(MODELS)
        return f"{model}-refreshed-empty", {
            "match": {"prefect.resource.id": f"dbt.model.{model}"},
            "expect": ["dbt.model.refreshed"],
            "where": "payload.rows == `0`",
            "threshold": 1,
            "within": "0s",
        }
    slug = rng.choice(WEBHOOK_SLUGS)
    return f"{slug}-errors", {
        "match": {"prefect.resource.id": f"tripwire.webhook.{slug}"},
        "expect": [f"webhook.{slug}.received"],
        "where": "payload.status == 'error'",
        "for_each": ["prefect.resource.id"],
        "threshold": 5,
        "within": "1h",
    }


def _composite(rng: random.Random, sequence: bool) -> tuple[str, dict[str, Any]]:
    """Two flows both completed within 2h (compound), or a flow then a dbt model within
    30m (sequence)."""
    first, second = rng.sample(FLOWS[:40], 2)
    completed = {
        "type": "event",
        "match": RUN,
        "match_related": _flow_related(first),
        "expect": ["prefect.flow-run.Completed"],
    }
    if not sequence:
        other = {**completed, "match_related": _flow_related(second)}
        name = f"{first}-and-{second}-done"
        return name, {
            "type": "compound",
            "require": "all",
            "within": "2h",
            "triggers": [completed, other],
        }
    model = rng.choice(MODELS)
    refreshed = {
        "type": "event",
        "match": {"prefect.resource.id": f"dbt.model.{model}"},
        "expect": ["dbt.model.refreshed"],
        "where": "payload.rows > `0`",
    }
    name = f"{first}-then-{model}-refreshed"
    return name, {"type": "sequence", "within": "30m", "triggers": [completed, refreshed]}


def automation_definitions(count: int, seed: int = SEED) -> list[Automation]:
    """`count` valid automations: mostly on Prefect flows (the busier flows watched more
    often), then Airflow DAGs, GitHub, dbt and webhooks, a few compound and sequence
    triggers; ~10% paused."""
    rng = random.Random(seed)
    flow_weights, dag_weights = popularity(len(FLOWS)), popularity(len(DAGS))
    found: list[Automation] = []
    names: Counter[str] = Counter()
    while len(found) < count:
        draw = rng.random()
        flow: str | None = None
        prefect_run = False
        if draw < 0.6:
            flow = rng.choices(FLOWS, cum_weights=flow_weights)[0]
            name, trigger = _prefect_trigger(rng, flow, rng.randrange(5))
            trigger, prefect_run = {"type": "event", **trigger}, True
        elif draw < 0.8:
            dag = rng.choices(DAGS, cum_weights=dag_weights)[0]
            name, trigger = _airflow_trigger(rng, dag, rng.randrange(3))
            trigger = {"type": "event", **trigger}
        elif draw < 0.95:
            name, trigger = _other_trigger(rng, rng.randrange(3))
            trigger = {"type": "event", **trigger}
        else:
            name, trigger = _composite(rng, sequence=rng.random() < 0.5)
        names[name] += 1
        if names[name] > 1:
            name = f"{name}-{names[name]}"
        definition: dict[str, Any] = {
            "name": name,
            "description": f"Seeded by bench.ui ({trigger['type']} trigger)",
            "enabled": rng.random() >= PAUSED_SHARE,
            "tags": rng.sample(
                ("on-call", "etl", "data", "platform", "finance"), rng.randint(0, 2)
            ),
            "trigger": trigger,
            "actions": _actions(rng, flow, prefect_run),
        }
        if trigger.get("posture") == "Proactive":
            definition["actions_on_resolve"] = [_slack("{{ automation.name }} resolved")]
        found.append(Automation.model_validate(definition))
    return found


# --- decisions ----------------------------------------------------------------------------


@dataclass
class Watch:
    """One event trigger of a stored automation, with the kept events it is a candidate
    for (its `expect` and `after` names), split by whether its labels cover them."""

    stored: StoredAutomation
    trigger: EventTrigger
    composite: str | None  # "compound" or "sequence" for a child
    covered: list[dict[str, Any]]
    uncovered: list[tuple[dict[str, Any], str]]  # with why_not_covered's reason
    passing: list[dict[str, Any]]  # covered, and `where` holds: what it fires on


def trigger_subject(trigger: EventTrigger) -> str | None:
    """The flow, deployment, DAG or resource a trigger names outright (no glob), if any."""
    literal = [spec.get("prefect.resource.name") for spec in trigger.match_related]
    literal.append(trigger.match.get("prefect.resource.id"))
    for value in literal:
        if isinstance(value, str) and not any(c in value for c in "*?[!"):
            return value
    return None


def watches(stored: StoredAutomation, sample: Sample) -> list[Watch]:
    """The event triggers of an automation, with their candidate events: those about
    what the trigger names, and others of the same names; the engine's matcher
    (why_not_covered) sorts them."""
    found = []
    for trigger, parent in event_triggers(stored.automation):
        names = [*trigger.expect, *trigger.after]
        covered, uncovered = [], []
        for body in dict.fromkeys(
            [*sample.about(names, trigger_subject(trigger)), *sample.of(names)]
        ):
            document, event = sample.event(body)
            reason = why_not_covered(trigger, event)
            if reason is None:
                covered.append(document)
            else:
                uncovered.append((document, reason))
        where = trigger.where_expression
        passing = [d for d in covered if where is None or expression_holds(where, d)]
        kind = parent.type if parent is not None else None
        found.append(Watch(stored, trigger, kind, covered, uncovered, passing))
    return found


def _decided(document: dict[str, Any], rng: random.Random) -> datetime:
    received = datetime.fromisoformat(document["received"])
    return received + timedelta(milliseconds=20 + 400 * rng.random())


def _counting(trigger: EventTrigger, count: int, end: datetime) -> str:
    if trigger.posture is Posture.Reactive:
        return (
            f"{count} of {trigger.threshold} events within {span_text(trigger.within)} "
            f"(window ends {instant_text(end)})"
        )
    return (
        f"{count} of {trigger.threshold} expected events so far (window ends {instant_text(end)})"
    )


def decision_about(watch: Watch, document: dict[str, Any], rng: random.Random) -> Decision:
    """What the evaluator would have recorded about a covered event, worded as it words
    it: counted, fired, late, armed, waiting or resolved."""
    trigger, event = watch.trigger, ReceivedEvent.from_stored(document)
    automation_id, trigger_id = str(watch.stored.id), str(trigger.id)
    end = event.occurred + trigger.within
    draw = rng.random()

    def decided(outcome: Outcome, reason: str) -> Decision:
        when = _decided(document, rng)
        return Decision(automation_id, trigger_id, outcome, reason, event=event, decided=when)

    if trigger.where_expression is not None and not expression_holds(
        trigger.where_expression, document
    ):
        return decided(Outcome.filtered, f"where was false: {trigger.where}")
    if trigger.posture is Posture.Proactive:
        if any(fnmatch.fnmatchcase(event.event, glob) for glob in trigger.after):
            expected = ", ".join(trigger.expect) or "events"
            return decided(
                Outcome.armed, f"armed: counting {expected} for {span_text(trigger.within)}"
            )
        if draw < 0.15 and trigger.after:
            return decided(
                Outcome.waiting,
                f"not armed: waiting for an after event ({', '.join(trigger.after)})",
            )
        if draw < 0.25:
            return decided(Outcome.resolved, "resolved: the expected events arrived")
        return decided(Outcome.counted, _counting(trigger, 1, end))
    if draw < 0.03:
        start = event.occurred + timedelta(seconds=30)
        return decided(
            Outcome.late,
            f"occurred before the open window (from {instant_text(start)}): it fired already "
            "in this window, or the event is older than the window",
        )
    threshold = trigger.threshold
    if draw < 0.25 or threshold == 1:
        why = f"{threshold} of {threshold} events within {span_text(trigger.within)}"
        if watch.composite is not None:
            return decided(
                Outcome.counted,
                f"child trigger fired ({why}); {watch.composite} trigger has 1 of 2 child "
                f"firings within 2h",
            )
        return decided(Outcome.fired, f"fired: {why}")
    return decided(Outcome.counted, _counting(trigger, rng.randint(1, threshold - 1), end))


def timer_decision(watch: Watch, rng: random.Random, now: datetime) -> Decision:
    """A proactive window's end, decided by the timer (no event): fired or expired."""
    trigger = watch.trigger
    end = now - timedelta(seconds=rng.uniform(0, RETENTION.total_seconds()))
    start = end - trigger.within
    window = f"{instant_text(start)}..{instant_text(end)}"
    if rng.random() < 0.5:
        outcome, reason = (
            Outcome.fired,
            f"fired: only 0 of {trigger.threshold} expected events in {window}",
        )
    else:
        outcome = Outcome.expired
        reason = f"window {window} saw 1 of {trigger.threshold} expected events: no firing"
    return Decision(str(watch.stored.id), str(trigger.id), outcome, reason, decided=end)


def automation_decisions(
    triggers: list[Watch], rng: random.Random, now: datetime
) -> list[Decision]:
    """About DECISIONS_PER_AUTOMATION decisions of one automation."""
    found: list[Decision] = []
    for _ in range(rng.randint(DECISIONS_PER_AUTOMATION // 2, DECISIONS_PER_AUTOMATION * 3 // 2)):
        watch = rng.choice(triggers)
        stored = watch.stored
        if not stored.automation.enabled and watch.covered and rng.random() < 0.8:
            document = rng.choice(watch.covered)
            found.append(
                Decision(
                    str(stored.id),
                    str(watch.trigger.id),
                    Outcome.paused,
                    "the automation is paused",
                    event=ReceivedEvent.from_stored(document),
                    decided=_decided(document, rng),
                )
            )
        elif watch.uncovered and (rng.random() < 0.3 or not watch.covered):
            document, reason = rng.choice(watch.uncovered)
            event = ReceivedEvent.from_stored(document)
            decided = _decided(document, rng)
            found.append(
                Decision(
                    str(stored.id), str(watch.trigger.id), Outcome.unmatched, reason, event, decided
                )
            )
        elif watch.covered:
            found.append(decision_about(watch, rng.choice(watch.covered), rng))
        elif watch.trigger.posture is Posture.Proactive:
            found.append(timer_decision(watch, rng, now))
    return found


# --- the action ledger --------------------------------------------------------------------

SLACK = "Slack hooks.slack.com/services/T01…/B02…/***"
HOOK = "POST https://ops.example.com/hooks/tripwire"
TOO_LONG = ("took longer than 30s (the attempt limit)", None)
# (result, status code) of a success and (error, status code) of failures, per action type,
# worded as the executors word them.
RESULTS: dict[str, tuple[str, int | None]] = {
    "send-slack": (f"posted to {SLACK} (200 ok)", 200),
    "call-webhook": (f"{HOOK} → 200 OK", 200),
    "send-notification": ("notified via PagerDuty (pagerduty://)", None),
    "emit-event": ("emitted ops.alert.raised (01a2f3c4-5d6e-7f80-9a1b-2c3d4e5f6a7b)", None),
    "do-nothing": ("did nothing, as asked", None),
    "run-deployment": ("created flow run prefect.flow-run.4c1f… of deployment …-prod", 201),
    "change-flow-run-state": ("asked Prefect to cancel flow run …: now Cancelled (CANCELLED)", 201),
}
ERRORS: dict[str, list[tuple[str, int | None]]] = {
    "send-slack": [
        (f"{SLACK} is rate limiting (429 rate_limited); Slack asks to wait 30 s", 429),
        (f"{SLACK} answered 503 service_unavailable; Slack may be having trouble, will retry", 503),
        (f"{SLACK} answered 404 no_service: the webhook was removed or disabled", 404),
    ],
    "call-webhook": [
        (f"{HOOK} answered 502 Bad Gateway", 502),
        (f"{HOOK} timed out (ReadTimeout: )", None),
        (f"{HOOK} answered 401 Unauthorized: invalid token", 401),
        TOO_LONG,
    ],
    "send-notification": [
        ("send-notification via PagerDuty (pagerduty://) failed: Sending PagerDuty failed", None),
    ],
    "run-deployment": [
        ("Prefect refused to create a flow run (409): the deployment is paused", 409),
        ("deployment etl-orders/etl-orders-prod not found on http://prefect:4200/api", 404),
    ],
    "change-flow-run-state": [
        ("Prefect refused to cancel flow run … (ABORT): the run is already Completed", None),
    ],
}


def attempt_outcome(
    action_type: str, status: Status, rng: random.Random
) -> tuple[str | None, str | None, int | None]:
    """(result, last_error, status_code) of a ledger row."""
    if status is Status.succeeded:
        result, code = RESULTS.get(action_type, ("done", None))
        return result, None, code
    error, code = rng.choice(ERRORS.get(action_type, [TOO_LONG]))
    return None, error, code


@dataclass
class Firing:
    """A firing seeded into the ledger: its automation, trigger and event."""

    stored: StoredAutomation
    trigger_id: str
    event: dict[str, Any]


def ledger_rows(firing: Firing, now: datetime, rng: random.Random) -> list[dict[str, Any]]:
    """The ledger rows of one firing's actions, ids derived as the engine derives them."""
    automation = firing.stored.automation
    event = ReceivedEvent.from_stored(firing.event)
    fired = firing_id(firing.trigger_id, event.id)
    created = event.received + timedelta(milliseconds=30 + 300 * rng.random())
    rows = []
    for index, action in enumerate(automation.actions):
        request = ActionRequest(
            id=firing_id(fired, "action", index),
            automation=AutomationRef(id=firing.stored.id, name=automation.name),
            firing_id=fired,
            state=FiringState.triggered,
            action_index=index,
            action=action,
            triggered=event.occurred,
            triggering_event=event,
        )
        recent = now - created < timedelta(hours=6)
        draw = rng.random()
        if recent and draw < 0.3:
            status, attempts = Status.retrying, rng.randint(1, 3)
        elif draw < 0.09:
            status, attempts = Status.failed, rng.choice((1, 4))
        else:
            status, attempts = Status.succeeded, 1 if rng.random() < 0.95 else 2
        result, error, code = attempt_outcome(action.type, status, rng)
        if status is Status.succeeded and attempts > 1:  # a retried success keeps its error
            error = attempt_outcome(action.type, Status.failed, rng)[1]
        duration = rng.lognormvariate(5, 1)  # ms; a few slow calls
        started = created + timedelta(milliseconds=rng.uniform(1, 50))
        last = started + timedelta(seconds=2 * (2 ** (attempts - 1) - 1))
        rows.append(
            {
                "id": str(request.id),
                "automation_id": str(firing.stored.id),
                "automation_name": automation.name,
                "firing_id": str(fired),
                "action_index": index,
                "action_type": action.type,
                "status": status.value,
                "attempts": attempts,
                "round": 0,
                "lease_until": None,
                "next_attempt": now + timedelta(seconds=rng.uniform(5, 600))
                if status is Status.retrying
                else None,
                "status_code": code,
                "result": result,
                "last_error": error,
                "request": request.model_dump_json(),
                "created": created,
                "started": started,
                "finished": None
                if status is Status.retrying
                else last + timedelta(milliseconds=duration),
                "duration_ms": round(duration, 1),
            }
        )
    return rows


def firings(all_watches: list[list[Watch]], count: int, rng: random.Random) -> Iterator[Firing]:
    """Firings until `count` action rows: the automations drawn first fire far more often
    than the rest, each on events its trigger covers, each event once (one firing per
    event, as a reactive trigger fires). Automations with a compound or sequence trigger
    are left out: their firings are made of their children's."""
    pools = [
        (watch, rng.sample(watch.passing, len(watch.passing)))
        for triggers in all_watches
        for watch in triggers
        if watch.composite is None and watch.passing and watch.stored.automation.actions
    ]
    rng.shuffle(pools)  # which automations are the busy ones: not the first by name
    weights = popularity(len(pools))
    rows, left = 0, sum(len(events_) for _, events_ in pools)
    while rows < count and left:
        index = bisect.bisect_left(weights, rng.random() * weights[-1])
        while not pools[index][1]:  # used up: the next one that is not
            index = (index + 1) % len(pools)
        watch, unused = pools[index]
        left -= 1
        rows += len(watch.stored.automation.actions)
        yield Firing(watch.stored, str(watch.trigger.id), unused.pop())


# --- SLAs and webhooks --------------------------------------------------------------------


def sla_definitions(count: int = SLA_COUNT) -> list[SLA]:
    """Duration SLAs on flow runs, freshness SLAs per flow of a kind, deadline SLAs on dbt
    models; every other one with an early warning."""
    found: list[SLA] = []
    adapter: TypeAdapter[SLA] = TypeAdapter(SLA)
    for index in range(count):
        flow = FLOWS[index]
        warning = {"before": "30m", "actions": [_slack("{{ sla.name }} is at risk")]}
        definition: dict[str, Any] = {
            "severity": ("info", "warning", "critical")[index % 3],
            "actions": [_slack("SLA missed: {{ sla.name }}")],
        }
        kind = index % 3
        if kind == 0:
            definition |= {
                "name": f"{flow}-finishes-within-2h",
                "kind": "duration",
                "start": ["prefect.flow-run.Running"],
                "expect": ["prefect.flow-run.Completed"],
                "match": RUN,
                "match_related": _flow_related(flow),
                "for_each": ["prefect.resource.id"],
                "within": "2h",
            }
        elif kind == 1:
            family = FLOW_KINDS[index % len(FLOW_KINDS)]
            definition |= {
                "name": f"{family}-flows-complete-every-6h-{index}",
                "kind": "freshness",
                "expect": ["prefect.flow-run.Completed"],
                "match": RUN,
                "match_related": _flow_related(f"{family}-*"),
                "for_each": ["related:flow:prefect.resource.name"],
                "every": "6h",
            }
        else:
            hour = 6 + index % 4
            definition |= {
                "name": f"dbt-models-refreshed-by-{hour}-{index}",
                "kind": "deadline",
                "expect": ["dbt.model.refreshed"],
                "match": {"prefect.resource.id": "dbt.model.*"},
                "for_each": ["prefect.resource.id"],
                "deadline": {"cron": f"0 {hour} * * MON-FRI", "timezone": "Europe/Berlin"},
                "grace": "15m",
            }
        if index % 2 == 0:
            definition["warn_before"] = warning
        found.append(adapter.validate_python(definition))
    return found


def sla_key(sla: SLA, index: int, rng: random.Random) -> tuple[str, dict[str, str]]:
    """Key `index` of an SLA: its for_each value as the key JSON, and the resource labels."""
    if sla.kind == "duration":
        run = f"prefect.flow-run.{UUID(int=rng.getrandbits(128), version=4)}"
        name = f"{rng.choice(ADJECTIVES)}-{rng.choice(ANIMALS)}"
        labels = {
            "prefect.resource.id": run,
            "prefect.resource.name": name,
            "prefect.state-name": "Running",
        }
        return orjson.dumps([run]).decode(), labels
    if sla.kind == "freshness":
        family = sla.name.split("-", 1)[0]
        flow = f"{family}-{FLOW_SUBJECTS[index % len(FLOW_SUBJECTS)]}"
        run = f"prefect.flow-run.{UUID(int=rng.getrandbits(128), version=4)}"
        labels = {"prefect.resource.id": run, "prefect.state-name": "Completed"}
        return orjson.dumps([flow]).decode(), labels
    model = f"dbt.model.{MODELS[index % len(MODELS)]}"
    return orjson.dumps([model]).decode(), {"prefect.resource.id": model}


def sla_windows_of(
    sla: SLA, keys: int, rng: random.Random, now: datetime
) -> list[sla_windows_store.Window]:
    """`keys` windows as the evaluator opens them (its own first_window), then in a state:
    ~70% ok, ~15% at-risk (warned; SLAs with warn_before only), ~15% missed."""
    watched = Watched(sla_id(sla.name), sla, fingerprint(sla))
    found = []
    for index in range(keys):
        key, labels = sla_key(sla, index, rng)
        draw = rng.random()
        state = "missed" if draw < 0.15 else "at-risk" if draw < 0.3 and sla.warn_before else "ok"
        if isinstance(sla, DeadlineSLA):
            window = watched.first_window(key, labels, now)  # up to the next deadline
            if state == "missed":  # the previous deadline passed unmet; the window rolled on
                window.missed = window.opened - sla.grace
            elif state == "ok" and rng.random() < 0.5:
                window.met = window.last_seen = window.opened + (now - window.opened) / 2
        else:
            span = sla.within if isinstance(sla, DurationSLA) else sla.every
            if state == "missed":
                at = now - span - timedelta(seconds=rng.uniform(60, 3 * 86400))
            elif state == "at-risk" and sla.warn_before is not None:
                at = now - span + sla.warn_before.before * rng.random()
            else:
                at = now - span * rng.uniform(0, 0.5)
            window = watched.first_window(key, labels, at)
            window.last_seen, window.last_event = at, uuid7_at(at, rng)
            if state == "missed":  # the timer declared it and disarmed the window
                window.missed, window.armed, window.warn_at = window.deadline, False, None
        if state == "missed":
            window.missed_id = str(UUID(int=rng.getrandbits(128), version=4))
        elif state == "at-risk":
            window.warn_at = None  # the warning went out
        found.append(window)
    return found


def webhook_definitions(count: int = WEBHOOK_COUNT) -> list[WebhookDefinition]:
    """Webhooks with each signature scheme (and none), a template or a mapping."""
    found = []
    for index, slug in enumerate(WEBHOOK_SLUGS[:count]):
        secret = f"{{{{ secret('{slug.upper().replace('-', '_')}_SECRET') }}}}"
        definition: dict[str, Any] = {"slug": slug, "description": f"Events from {slug}"}
        scheme = index % 4
        if scheme == 0:
            definition["signature"] = {"scheme": "github", "secret": secret}
            definition["template"] = (
                '{"event": "github.{{ headers[\'x-github-event\'] }}", '
                '"resource": {"prefect.resource.id": '
                '"github.repo.{{ body.repository.full_name }}"}, '
                '"payload": {{ body | tojson }}}'
            )
        elif scheme == 1:
            definition["signature"] = {"scheme": "standard-webhooks", "secret": secret}
            definition["mapping"] = {
                "event": "join('.', ['" + slug + "', type])",
                "resource": {"prefect.resource.id": "join('.', ['" + slug + "', data.id])"},
                "payload": "data",
            }
        elif scheme == 2:
            definition["signature"] = {
                "scheme": "hmac-sha256",
                "secret": secret,
                "header": "X-Signature",
                "prefix": "sha256=",
            }
        found.append(WebhookDefinition.model_validate(definition))
    return found


REJECTIONS = (
    (401, "X-Hub-Signature-256 does not match the body and the secret", None),
    (401, "the X-Hub-Signature-256 header is missing; the request is not signed", None),
    (401, "webhook-signature does not match the request and the secret", None),
    (413, "the body is 2,400,000 bytes; at most 1,000,000 are accepted", None),
    (
        422,
        "the template did not render an event: 'dict object' has no attribute 'repository'",
        "template",
    ),
    (422, "the body is not valid JSON (unexpected character: line 1 column 1 (char 0))", None),
)


def rejection_of(slug: str, rng: random.Random, now: datetime) -> Rejection:
    status, reason, field_ = rng.choice(REJECTIONS)
    body = '{"action": "opened", "number": 42}'
    return Rejection(
        slug=slug,
        status=status,
        reason=reason,
        field=field_,
        method="POST",
        query="",
        headers={
            "content-type": "application/json",
            "user-agent": "GitHub-Hookshot/1a2b3c",
            "x-hub-signature-256": "***",
        },
        body=body,
        size=len(body),
        received=now - timedelta(seconds=rng.uniform(0, RETENTION.total_seconds())),
    )


# --- seeding ------------------------------------------------------------------------------


async def seed_definitions(
    db: AsyncEngine, ledger_db: AsyncEngine, automation_count: int, sample: Sample, now: datetime
) -> None:
    """Webhooks, SLAs and their windows, the action ledger, then the automations and their
    decisions (last: a database with decisions is a finished seed)."""
    rng = random.Random(SEED)
    webhook_store = WebhookStore(db)
    await webhook_store.apply(webhook_definitions())
    for slug in WEBHOOK_SLUGS[:WEBHOOK_COUNT]:
        for _ in range(rng.randint(*REJECTIONS_PER_WEBHOOK)):
            await webhook_store.reject(rejection_of(slug, rng, now))
    log(f"webhooks: {WEBHOOK_COUNT} with their refused requests")
    wanted_slas = sla_definitions()
    await SLAStore(db).apply(wanted_slas)
    windows = [w for sla in wanted_slas for w in sla_windows_of(sla, KEYS_PER_SLA, rng, now)]
    async with db.begin() as conn:
        await sla_windows_store.save(conn, windows, [])
    log(f"SLAs: {len(wanted_slas)} with {len(windows):,} windows")
    store = AutomationStore(db)
    await store.apply(automation_definitions(automation_count))
    stored = await store.all()  # with the ids the engine gave them and their triggers
    all_watches = [watches(automation, sample) for automation in stored]
    rows = [
        row
        for firing in firings(all_watches, LEDGER_ROWS_PER_AUTOMATION * automation_count, rng)
        for row in ledger_rows(firing, now, rng)
    ]
    rows.sort(key=lambda row: row["created"])
    async with ledger_db.begin() as conn:
        await conn.execute(action_ledger.insert(), rows)
    log(f"action ledger: {len(rows):,} rows")
    traces = [d for triggers in all_watches for d in automation_decisions(triggers, rng, now)]
    traces.sort(key=lambda d: d.decided)  # ids in the order the engine would write them
    async with db.begin() as conn:
        await conn.execute(decisions.insert(), [d.row() for d in traces])
    log(f"automations: {len(stored):,} with {len(traces):,} decisions")
