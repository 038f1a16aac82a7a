"""Dashboard benchmark: server time per page of the web dashboard (/ui/) on real volumes.

    python -m bench.ui [--events 1000000] [--automations 1000] [--requests 50]
                       [--reuse PATH | --database-url URL] [--port P]

Seeding. The schema is made as the engine makes it (its migrations), then filled through
the engine's own stores and tables, in large transactions, not through the API:

- `--events` events spread evenly over the last 7 days (the default retention), each a
  valid ReceivedEvent (validated, then stored as the engine encodes it) with a payload:
  ~70% `prefect.flow-run.{Late,Pending,Running,Completed,Failed}` of runs of 200 flows
  (related flow and deployment, `follows` chained per run as Prefect does), ~20%
  `airflow.dag-run.{running,success,failed}` of 50 DAGs (related DAG and tags, as the
  Airflow listener sends them), ~10% GitHub, webhook, dbt and Stripe events. Ids are
  UUIDv7 of the time they occurred, as producers make them.
- `--automations` automations in Prefect's shape (reactive counts with `within` and
  `for_each`, proactive ones with and without `after`, compound and sequence triggers,
  Prefect, Airflow, GitHub and dbt events; ~10% paused; 1 or 2 actions each); ~20
  decisions each, worded as the evaluator words them, about seeded events (unmatched
  reasons come from the engine's own matcher); 20 action-ledger rows per automation over
  the 7 days (succeeded, failed, retrying; attempts, results and errors as the executors
  write them; the busiest automations fire most).
- 50 SLAs (duration, freshness, deadline) with 20 keys each, windows ok, at-risk or
  missed; 20 webhooks with 2 to 6 refused requests each.

Seeding takes minutes for a million events, so a seeded database is kept: `--reuse PATH`
seeds the SQLite file PATH once (with the action ledger beside it, PATH's stem +
`-actions.db`, as the engine expects) and reuses it on later runs; `--database-url URL`
(e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/bench) seeds that database when it is
empty and reuses it when a run seeded it before; one holding other events or automations
is refused (the benchmark deletes nothing it did not make). Neither: a throwaway SQLite
file. On PostgreSQL the tables are ANALYZEd after seeding, as autovacuum would have done
by the time anyone looks at a dashboard; the engine never analyzes SQLite, so neither
does this.

Timing. `tripwire serve api` (the api role alone: no worker sweeps or evaluates, no
timer fires, so the data holds still) starts on a free port with a fresh home (and its
embedded nats-server) against the database; once /api/health answers, each page of
PAGES gets 3 warm-up GETs and then `--requests` sequential GETs. The time of a request is
what the server says in `Server-Timing: app;dur=<ms>`; where a page does not send it,
the client's wall time (connection on localhost, body read) is used and the page says
`"timing": "client"`. Per page: p50, p99 and max (nearest rank: with 50 requests, p99 is
the slowest), the status and the body's bytes. A page that does not answer 200 is
reported with its status and not timed. A reused seed's events end when it was made: the
result gives its age (`seeded.seed_age_hours`), and a day-old seed is flagged.

Progress goes to stderr; one JSON object with the results goes to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import fnmatch
import random
import string
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote
from uuid import NAMESPACE_URL, UUID, uuid5

import httpx
import orjson
from pydantic import TypeAdapter
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from actions.ledger import Status
from actions.request import ActionRequest, AutomationRef, FiringState
from actions.tables import action_ledger
from bench import harness
from bench.actions import log_summary
from bench.harness import log
from bench.triggers import revision
from events.embedded import free_port
from events.model import ReceivedEvent
from events.store import EventStore
from events.tables import event_resources, events
from events.webhooks.model import WebhookDefinition
from events.webhooks.rejections import Rejection
from events.webhooks.store import WebhookStore
from events.webhooks.tables import webhook_rejections, webhooks
from sla import windows as sla_windows_store
from sla.evaluator import Watched
from sla.model import SLA, DeadlineSLA, DurationSLA
from sla.store import SLAStore, fingerprint, sla_id
from sla.tables import sla_windows, slas
from triggers.automation import Automation
from triggers.firing import firing_id
from triggers.identity import event_triggers
from triggers.matching import expression_holds, why_not_covered
from triggers.model import EventTrigger, Posture
from triggers.repository import AutomationStore, StoredAutomation
from triggers.results import Decision, Outcome, instant_text, span_text
from triggers.tables import automations as automations_table
from triggers.tables import decisions
from tripwire.database import create_engine, migrate, sqlite_path
from tripwire.settings import Settings

# --- parameters ---------------------------------------------------------------------------

WARMUPS = 3
HEALTH_TIMEOUT = 120.0
REQUEST_TIMEOUT = 120.0  # one page; a slow page is a finding, not a failure
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
STALE_AFTER_HOURS = 24  # a reused seed older than this is flagged: its events end then


@dataclass(frozen=True)
class Page:
    """One dashboard page: its name in the results and its path, in which {event},
    {automation} and {sla} stand for a seeded event's id, automation's name and SLA's
    name."""

    name: str
    path: str


# The URL contract of the dashboard; add a row to time another page.
PAGES: tuple[Page, ...] = (
    Page("home", "/ui/"),
    Page("events", "/ui/events"),
    Page("events_filtered", "/ui/events?event=prefect.flow-run"),
    Page("event", "/ui/events/{event}"),
    Page("automations", "/ui/automations"),
    Page("automation", "/ui/automations/{automation}"),
    Page("slas", "/ui/slas"),
    Page("sla", "/ui/slas/{sla}"),
    Page("actions", "/ui/actions"),
    Page("actions_failed", "/ui/actions?status=failed"),
    Page("webhooks", "/ui/webhooks"),
)

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


@dataclass
class Database:
    """Where the benchmark's data lives: the main database and the action ledger's (a
    file of its own under SQLite, as the engine keeps it)."""

    url: str
    ledger_url: str

    @property
    def files(self) -> list[Path]:
        paths = {sqlite_path(self.url), sqlite_path(self.ledger_url)}
        return [
            Path(f"{path}{suffix}")
            for path in paths
            if path is not None
            for suffix in ("", "-wal", "-shm")
        ]

    @property
    def dialect(self) -> str:
        return (
            "sqlite"
            if sqlite_path(self.url) is not None
            else self.url.split(":", 1)[0].split("+")[0]
        )


def database(path: Path | None, url: str | None) -> Database:
    """The database of `--reuse PATH` or `--database-url URL`, with its ledger's URL as
    the engine derives it."""
    if url is None:
        assert path is not None
        url = f"sqlite+aiosqlite:///{path.resolve()}"
    ledger = Settings(database_url=url).ledger_database_url
    return Database(url, ledger)


async def seeded(db: AsyncEngine) -> bool | None:
    """True when a finished seed is there, False when the database is empty, None when it
    holds something else (an interrupted seed, or data of its own)."""
    async with db.connect() as conn:
        traces = await conn.scalar(select(func.count()).select_from(decisions))
        stored = await conn.scalar(select(events.c.id).limit(1))
        defined = await conn.scalar(select(automations_table.c.id).limit(1))
    if traces:
        return True
    return None if stored is not None or defined is not None else False


async def prepare(target: Database, event_count: int, automation_count: int) -> float | None:
    """Migrate, and seed unless a finished seed is there; the seconds seeding took, or
    None when the database was reused."""
    db = create_engine(target.url)
    ledger_db = db if target.ledger_url == target.url else create_engine(target.ledger_url)
    try:
        await migrate(db)
        if ledger_db is not db:
            await migrate(ledger_db)  # one history for both files, as the engine does
        state = await seeded(db)
        if state is True:
            log("reusing the seeded database (--events and --automations apply to a new seed)")
            return None
        if state is None:
            raise RuntimeError(
                "the database holds events or automations but no finished seed (an "
                "interrupted run?); give an empty database, or delete the file to seed again"
            )
        started = time.monotonic()
        now = datetime.now(UTC)
        log(f"seeding {event_count:,} events over the last {RETENTION.days} days")
        sample = await seed_events(db, event_count, now)
        await seed_definitions(db, ledger_db, automation_count, sample, now)
        await settle(db, ledger_db, target)
        seconds = time.monotonic() - started
        log(f"seeded in {seconds:.1f}s")
        return seconds
    finally:
        await db.dispose()
        if ledger_db is not db:
            await ledger_db.dispose()


async def settle(db: AsyncEngine, ledger_db: AsyncEngine, target: Database) -> None:
    """PostgreSQL: ANALYZE, as autovacuum would have by the time anyone looks at a
    dashboard. SQLite: empty the WALs into the files (the engine's checkpoint thread
    would have), so that the size is the database's and the api starts on a clean file."""
    if target.dialect == "postgresql":
        async with db.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("ANALYZE"))
        return
    for engine in {db, ledger_db}:
        async with engine.connect() as conn:
            await conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")


# --- what was seeded ----------------------------------------------------------------------


@dataclass
class Contents:
    """What the database holds, and the seeded things the pages are opened on."""

    counts: dict[str, Any]
    targets: dict[str, str]
    size_mb: float | None


async def _count(db: AsyncEngine, table: Any) -> int:
    async with db.connect() as conn:
        return int(await conn.scalar(select(func.count()).select_from(table)) or 0)


async def contents(target: Database) -> Contents:
    """Row counts, the event, automation and SLA the detail pages show, and the size."""
    db = create_engine(target.url)
    ledger_db = db if target.ledger_url == target.url else create_engine(target.ledger_url)
    try:
        counts: dict[str, Any] = {}
        for table in (
            events,
            event_resources,
            automations_table,
            decisions,
            slas,
            sla_windows,
            webhooks,
            webhook_rejections,
        ):
            counts[str(table.name)] = await _count(db, table)
        counts["action_ledger"] = await _count(ledger_db, action_ledger)
        async with db.connect() as conn:
            paused = select(func.count()).where(automations_table.c.enabled.is_(False))
            counts["paused_automations"] = int(await conn.scalar(paused) or 0)
            first, last, recorded = (
                await conn.execute(
                    select(
                        func.min(events.c.occurred),
                        func.max(events.c.occurred),
                        func.max(events.c.recorded),
                    )
                )
            ).one()
            targets = {
                "event": await _event_target(conn),
                "sla": await _sla_target(conn),
            }
        async with ledger_db.connect() as conn:
            by_status = select(action_ledger.c.status, func.count()).group_by(
                action_ledger.c.status
            )
            counts["ledger_by_status"] = {
                row[0]: int(row[1]) for row in await conn.execute(by_status)
            }
            busiest = (
                select(action_ledger.c.automation_name)
                .group_by(action_ledger.c.automation_name)
                .order_by(func.count().desc(), action_ledger.c.automation_name)
                .limit(1)
            )
            targets["automation"] = str(await conn.scalar(busiest) or "")
        counts["events_from"] = first.isoformat() if first else None
        counts["events_to"] = last.isoformat() if last else None
        counts["seeded_at"] = recorded.isoformat() if recorded else None
        if recorded is not None:
            age = (datetime.now(UTC) - recorded).total_seconds() / 3600
            counts["seed_age_hours"] = round(age, 1)
            if age > STALE_AFTER_HOURS:
                # The events end when the seed was made: pages about the last hours or day
                # find fewer of them (or none) than on a live engine.
                log(f"warning: the seed is {age:.0f} hours old; pages of recent events see less")
        size = await _size_mb(db, target)
    finally:
        await db.dispose()
        if ledger_db is not db:
            await ledger_db.dispose()
    return Contents(counts, targets, size)


async def _event_target(conn: Any) -> str:
    """A flow run's failure of about a day ago: what one opens from the events list."""
    day_ago = datetime.now(UTC) - timedelta(days=1)
    query = (
        select(events.c.id)
        .where(events.c.event == "prefect.flow-run.Failed", events.c.occurred <= day_ago)
        .order_by(events.c.occurred.desc())
        .limit(1)
    )
    found = await conn.scalar(query)
    if found is None:
        found = await conn.scalar(select(events.c.id).order_by(events.c.occurred.desc()).limit(1))
    return str(found or "")


async def _sla_target(conn: Any) -> str:
    """The SLA with the most open misses."""
    missed = func.count(sla_windows.c.missed)
    query = (
        select(slas.c.name)
        .select_from(slas.outerjoin(sla_windows, sla_windows.c.sla_id == slas.c.id))
        .group_by(slas.c.name)
        .order_by(missed.desc(), slas.c.name)
        .limit(1)
    )
    return str(await conn.scalar(query) or "")


async def _size_mb(db: AsyncEngine, target: Database) -> float | None:
    if target.dialect == "postgresql":
        async with db.connect() as conn:
            size = await conn.scalar(text("SELECT pg_database_size(current_database())"))
        return round(int(size) / 2**20, 1)
    files = [path for path in target.files if path.exists()]
    return round(sum(path.stat().st_size for path in files) / 2**20, 1) if files else None


# --- timing the pages ---------------------------------------------------------------------


def server_time(header: str | None) -> float | None:
    """The `app` metric's duration in `Server-Timing: app;dur=12.3[, other;dur=…]`."""
    for metric in (header or "").split(","):
        name, *parameters = (part.strip() for part in metric.split(";"))
        if name != "app":
            continue
        for parameter in parameters:
            key, _, value = parameter.partition("=")
            if key.strip() == "dur":
                with contextlib.suppress(ValueError):
                    return float(value.strip().strip('"'))
    return None


async def time_page(client: httpx.AsyncClient, url: str, requests: int) -> dict[str, Any]:
    """WARMUPS GETs, then `requests` timed ones; a page that does not answer 200 is
    reported with its status, untimed."""
    report: dict[str, Any] = {"url": url}
    try:
        first = await client.get(url)
    except httpx.HTTPError as exc:
        return report | {"status": None, "error": f"{type(exc).__name__}: {exc}"}
    report |= {"status": first.status_code, "bytes": len(first.content)}
    if first.status_code != 200:
        return report | {"timed": False, "error": " ".join(first.text.split())[:200]}
    for _ in range(WARMUPS - 1):
        await client.get(url)
    server, wall, errors = [], [], Counter[str]()
    for _ in range(requests):
        sent = time.perf_counter()
        try:
            response = await client.get(url)
        except httpx.HTTPError as exc:
            errors[type(exc).__name__] += 1
            continue
        elapsed = (time.perf_counter() - sent) * 1000
        if response.status_code != 200:
            errors[f"http_{response.status_code}"] += 1
            continue
        wall.append(elapsed)
        report["bytes"] = len(response.content)
        duration = server_time(response.headers.get("server-timing"))
        if duration is not None:
            server.append(duration)
    # The server's own figure only when every timed answer gave it: mixing the two would
    # put client-side overhead into some samples and not others.
    timing = "server-timing" if server and len(server) == len(wall) else "client"
    spread = harness.percentiles(server if timing == "server-timing" else wall, (50, 99))
    report |= {
        "timed": bool(wall),
        "timing": timing,
        "requests": len(wall),
        "p50_ms": spread["p50"],
        "p99_ms": spread["p99"],
        "max_ms": spread["max"],
        "client_p50_ms": harness.percentiles(wall, (50,))["p50"],
    }
    if errors:
        report["errors"] = dict(errors)
    return report


def page_url(page: Page, targets: dict[str, str]) -> str:
    return page.path.format(**{name: quote(value, safe="") for name, value in targets.items()})


async def time_pages(
    api_url: str,
    engine: subprocess.Popen[bytes],
    home: Path,
    targets: dict[str, str],
    requests: int,
) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=api_url, timeout=REQUEST_TIMEOUT) as client:
        started = time.monotonic()
        await harness.wait_healthy(client, engine, home, HEALTH_TIMEOUT)
        log(f"api healthy in {time.monotonic() - started:.1f}s at {api_url}")
        found = {}
        for page in PAGES:
            report = await time_page(client, page_url(page, targets), requests)
            found[page.path] = report
            if report.get("timed"):
                log(
                    f"{page.path}: p50 {report['p50_ms']} ms, p99 {report['p99_ms']} ms "
                    f"({report['timing']}, {report['bytes']:,} bytes)"
                )
            else:
                log(f"{page.path}: {report['status']}, not timed")
    return found


# --- the run ------------------------------------------------------------------------------


def run(
    event_count: int = 1_000_000,
    automation_count: int = 1000,
    requests: int = 50,
    reuse: Path | None = None,
    database_url: str | None = None,
    port: int | None = None,
) -> dict[str, Any]:
    """Seed (or reuse) the database, time the pages on the api role; the result object."""
    if event_count < 1 or automation_count < 1 or requests < 1:
        raise ValueError("--events, --automations and --requests must be positive")
    benchmarked = revision()  # before the run: the checkout may change while it runs
    with tempfile.TemporaryDirectory(prefix="tripwire-bench-ui-") as tmp:
        root = Path(tmp)
        target = database(reuse or root / "tripwire.db", database_url)
        fresh = database_url is None and not Path(sqlite_path(target.url) or "").exists()
        try:
            seed_seconds = asyncio.run(prepare(target, event_count, automation_count))
        except BaseException:
            if fresh:  # a file this run made and did not finish: not to be reused
                for path in target.files:
                    path.unlink(missing_ok=True)
            raise
        found = asyncio.run(contents(target))
        log(f"database: {found.size_mb} MiB; pages on {found.targets}")
        port = port or free_port()
        home = root / "home"
        env = {"TRIPWIRE_DATABASE_URL": target.url, "TRIPWIRE_LOG_LEVEL": "WARNING"}
        engine = harness.serve("api", port, home, env)
        log(f"api pid {engine.pid}, home {home}")
        try:
            pages = asyncio.run(
                time_pages(f"http://127.0.0.1:{port}", engine, home, found.targets, requests)
            )
        finally:
            harness.stop_engine(engine, home)
        engine_log = log_summary(home / "engine.log")
    return {
        "benchmark": "ui",
        "machine": {**harness.machine(with_cpu_model=True), "dialect": target.dialect},
        "revision": benchmarked,
        "parameters": {
            # What a new seed would hold; a reused database holds what `seeded` counts.
            **(
                {}
                if seed_seconds is None
                else {"events": event_count, "automations": automation_count}
            ),
            "requests": requests,
            "warmups": WARMUPS,
            "database": "reused" if seed_seconds is None else "seeded by this run",
            "engine": "tripwire serve api (the api role alone, embedded nats-server)",
        },
        "seeded": found.counts,
        "seed_seconds": round(seed_seconds, 1) if seed_seconds is not None else None,
        "database_mb": found.size_mb,
        "targets": found.targets,
        "pages": pages,
        # What the api printed: its banner, then warnings and errors (a page's 500 shows here).
        "engine_log": engine_log,
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line of `python -m bench.ui`."""
    parser = harness.argument_parser("bench.ui", __doc__)
    parser.add_argument(
        "--events", type=int, default=1_000_000, help="events to seed (default 1000000)"
    )
    parser.add_argument(
        "--automations", type=int, default=1000, help="automations to seed (default 1000)"
    )
    parser.add_argument(
        "--requests", type=int, default=50, help="timed GETs per page, after 3 warm-ups (50)"
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--reuse",
        type=Path,
        default=None,
        metavar="PATH",
        help="SQLite file: seeded once if missing, reused otherwise",
    )
    where.add_argument(
        "--database-url",
        default=None,
        metavar="URL",
        help="e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/bench: seeded when empty, "
        "reused when seeded",
    )
    parser.add_argument("--port", type=int, default=None, help="API port (default free)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Run from the command line; 0 when every page answered 200 and was timed."""
    args = parse_args(argv)
    result = harness.run_printed(
        lambda: run(
            args.events, args.automations, args.requests, args.reuse, args.database_url, args.port
        )
    )
    if isinstance(result, int):
        return result
    return 0 if all(page.get("timed") for page in result["pages"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
