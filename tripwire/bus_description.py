"""The bus described for people who integrate with it: an AsyncAPI 3 document of the
subjects tripwire publishes on and the messages they carry, served at `/asyncapi.json`.

FastStream writes the document from publishers declared here with the same names and
models the engine uses, so it follows a change of either. The engine itself publishes
through nats-py (events/publisher.py); these publishers only describe.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from faststream.nats import JStream, NatsBroker
from faststream.specification import AsyncAPI

from actions.request import ActionRequest
from events.bus import Names
from events.model import ReceivedEvent
from tripwire import __version__

DESCRIPTION = """\
The NATS subjects of one tripwire namespace. Producers outside tripwire send events over
HTTP (`POST /api/events`); the bus is where the engine's roles meet, and where a consumer
of your own can watch events and action requests go by."""


def without_credentials(url: str) -> str:
    """A NATS URL with any user and password left out, fit to publish."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit(parts._replace(netloc=netloc))


def bus_description(names: Names, nats_url: str) -> dict[str, Any]:
    """The AsyncAPI document of the bus under `names`, served by `nats_url`."""
    servers = [without_credentials(server.strip()) for server in nats_url.split(",")]
    broker = NatsBroker(servers)
    broker.publisher(
        f"{names.events_subject}.{{key}}",
        stream=JStream(names.events_stream, declare=False),
        title="events",
        description=(
            "Every event tripwire accepted (HTTP, websocket, webhooks, a followed Prefect "
            "server) and every event it emits itself (firings, action outcomes, SLA states, "
            f"sources). JetStream stream {names.events_stream}; the message id "
            "(Nats-Msg-Id) is the event id, so a copy sent again is dropped. The last token "
            "is the event's key, 16 hex digits of the BLAKE2b digest of its resource id. "
            f"The workers' durable consumer {names.store_consumer} stores and evaluates "
            f"them; with TRIPWIRE_PARTITIONS above 1 the stream stores them as "
            f"{names.namespace}.events.p.<partition>.<key> and partition n has the "
            f"consumer {names.store_consumer}-<n>."
        ),
        schema=ReceivedEvent,
    )
    broker.publisher(
        names.actions_subject,
        stream=JStream(names.actions_stream, declare=False),
        title="action requests",
        description=(
            "One request per action of a firing or an SLA state, published once the "
            "transaction that decided it has committed. JetStream stream "
            f"{names.actions_stream}; the message id is the request id (a retry from the "
            f"ledger adds ':<round>'). The durable consumer {names.actions_consumer} runs "
            "them."
        ),
        schema=ActionRequest,
    )
    broker.publisher(
        names.timers_subject,
        title="timer notices",
        description=(
            "Core NATS, best effort: a worker that opened a window tells the sla role the "
            "instant it falls due (ISO 8601 text); a poll every 5 s backs it up."
        ),
        schema=str,
    )
    broker.publisher(
        names.silences_subject,
        title="silence notices",
        description=(
            "Core NATS, best effort, empty body: the api role tells the actions roles that a "
            "silence was added or expired, or that maintenance windows or inhibition rules "
            "were applied, so they read them again at once; they do within a second anyway."
        ),
        schema=str,
    )
    document = AsyncAPI(
        broker, title="tripwire bus", version=__version__, description=DESCRIPTION
    ).to_specification()
    jsonable: dict[str, Any] = document.to_jsonable()
    return jsonable
