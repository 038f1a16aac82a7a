"""Prometheus metrics, defined once here (the lowest layer) so every package can record them.

They live in prometheus-client's process-wide registry: several engines in one process
(the tests) share them. Labels stay bounded: transport, reason, stream kind, automation
name (bounded by configuration) and action type; never ids or URLs. `/metrics` in
`tripwire.app` serves them.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

BATCH_SIZES = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)
ACTION_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

EVENTS_ACCEPTED = Counter(
    "tripwire_events_accepted",
    "Events accepted at ingest (acknowledged by JetStream), by transport (http, websocket, "
    "webhook).",
    ["transport"],
)
EVENTS_REJECTED = Counter(
    "tripwire_events_rejected",
    "Ingest requests (HTTP bodies, websocket messages) refused, by transport and reason "
    "(invalid, too_large, bus_unavailable; webhooks also unauthorized, not_found, "
    "misconfigured).",
    ["transport", "reason"],
)
BUS_PUBLISH_SECONDS = Histogram(
    "tripwire_bus_publish_seconds",
    "Time to publish one batch and get every JetStream acknowledgement, by stream "
    "(events, actions).",
    ["stream"],
)
CONSUMER_LAG = Gauge(
    "tripwire_consumer_lag",
    "Messages a durable consumer has not yet acknowledged (store, actions); read at "
    "scrape time, absent when it could not be read.",
    ["consumer"],
)
EVALUATION_BATCH_SIZE = Histogram(
    "tripwire_evaluation_batch_size",
    "Events per store-and-evaluate batch.",
    buckets=BATCH_SIZES,
)
EVALUATION_SECONDS = Histogram(
    "tripwire_evaluation_seconds",
    "Duration of one store-and-evaluate transaction, by kind (events, due).",
    ["kind"],
)
FIRINGS = Counter(
    "tripwire_firings",
    "Automation firings, by automation name and state (triggered, resolved).",
    ["automation", "state"],
)
SLA_EVENTS = Counter(
    "tripwire_sla_events",
    "SLA state changes decided, by SLA name and state (missed, at-risk, recovered, met).",
    ["sla", "state"],
)
SLA_KEYS = Gauge(
    "tripwire_sla_keys",
    "Keys each SLA watches, by state (ok, missed: a miss not recovered yet); read at scrape.",
    ["sla", "state"],
)
ACTIONS = Counter(
    "tripwire_actions",
    "Action attempts by action type and outcome (executed, failed, retried).",
    ["type", "outcome"],
)
ACTION_ATTEMPT_SECONDS = Histogram(
    "tripwire_action_attempt_seconds",
    "Duration of one action attempt, by action type.",
    ["type"],
    buckets=ACTION_SECONDS,
)
TIMER_LAG_SECONDS = Histogram(
    "tripwire_timer_lag_seconds",
    "How late the due-window timer ran after the instant it was scheduled for.",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
