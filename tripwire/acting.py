"""The action side of a worker: the runner and its consumer on the actions stream."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncEngine

from actions.batching import GroupCommit
from actions.connections import ConnectionBook, ConnectionStore
from actions.executors import EXECUTORS
from actions.guard import AddressGuard
from actions.ledger import Ledger
from actions.outbound import action_client
from actions.prefect_api import PrefectConnection, PrefectConnections
from actions.request import ActionRequest
from actions.runner import ActionRunner, RetryPolicy
from actions.templating import Templates
from alerts.gate import SilenceGate
from events.bus import Bus
from events.consumer import MessageConsumer
from events.keys import EventMessage
from events.model import Event
from events.parsing import encode
from events.secrets import Secrets
from triggers.repository import AutomationStore
from tripwire.settings import Settings

Encoded = list[EventMessage]  # what one action emits, as the bus publishes it


def prefect_connections(settings: Settings) -> PrefectConnections:
    """The Prefect server(s) the settings name; stored connections come on top of them."""
    default = None
    if settings.prefect_api_url:
        default = PrefectConnection(
            api_url=settings.prefect_api_url,
            api_key=settings.prefect_api_key,
            auth_string=settings.prefect_api_auth_string,
            ui_url=settings.prefect_ui_url,
        )
    return PrefectConnections(default=default, named=settings.prefect_connections)


class Acting:
    """The runner, its consumer on the actions stream and its HTTP client; the engine
    starts and stops the consumer with the others and closes the client."""

    def __init__(
        self,
        settings: Settings,
        db: AsyncEngine,
        ledger_db: AsyncEngine,
        bus: Bus,
        automations: AutomationStore,
    ) -> None:
        s = settings
        self.bus = bus
        self.ledger = Ledger(ledger_db)
        self._publish: GroupCommit[Encoded, None] = GroupCommit(self._publish_many)
        self.connections = ConnectionStore(db)
        self.http = action_client(
            connections=s.action_concurrency * 2,
            timeout=s.action_timeout.total_seconds(),
            allow_private=s.allow_private_urls,
        )
        self.prefect_http = action_client(
            connections=s.action_concurrency,
            timeout=s.action_timeout.total_seconds(),
            allow_private=True,
        )
        policy = RetryPolicy(
            retries=s.action_retries,
            retry_delay=s.action_retry_delay,
            max_retry_delay=s.action_max_retry_delay,
            attempt_timeout=s.action_timeout,
        )
        self.silence_gate = SilenceGate(db, automations)
        self.runner = ActionRunner(
            ledger=self.ledger,
            executors=EXECUTORS,
            templates=Templates(Secrets(file=s.secrets_file)),
            http=self.http,
            guard=AddressGuard(allow_private=s.allow_private_urls),
            emit=self.emit,
            automations=automations,
            prefect=ConnectionBook(
                prefect_connections(s),
                self.connections,
                http=self.prefect_http,
                block_ttl=s.prefect_block_cache_ttl,
            ),
            policy=policy,
            hold=self.silence_gate,
        )
        names = bus.names
        self.consumer = MessageConsumer(
            bus,
            names.actions_stream,
            names.actions_wildcard,
            names.actions_consumer,
            self.runner.handle,
            concurrency=s.action_concurrency,
            ack_wait=policy.lease.total_seconds() + 2,  # redelivered only once the claim lapsed
        )

    async def aclose(self) -> None:
        """Close the HTTP clients (the engine stops the consumer with the others)."""
        await self.http.aclose()
        await self.prefect_http.aclose()

    async def resubmit(self, request: ActionRequest, round: int) -> None:
        """Send a re-run request onto the actions stream (its own id: not deduplicated)."""
        data = request.model_dump_json(by_alias=True).encode()
        await self.bus.publish(self.bus.names.actions_subject, [(f"{request.id}:{round}", data)])

    async def emit(self, events: Sequence[Event]) -> None:
        """Put events the actions make onto the events stream (one publish for what
        concurrent actions emit together). Encoded first, so an event that is too large
        fails its own action and no other's."""
        await self._publish.submit(encode([event.receive() for event in events]))

    async def _publish_many(self, batches: Sequence[Encoded]) -> list[None]:
        await self.bus.publish_events([message for batch in batches for message in batch])
        return [None] * len(batches)
