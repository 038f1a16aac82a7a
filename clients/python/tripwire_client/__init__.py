"""tripwire-client: send events to a tripwire engine from any Python process.

Standard library only. Events are queued and sent from a background thread in batches,
with short timeouts and retries; emitting never blocks on the network and never raises.

    from tripwire_client import emit_event
    emit_event("dbt.model.refreshed", "dbt.model.sales", payload={"rows": 1200})

Configured by TRIPWIRE_URL (or TRIPWIRE_API_URL) and TRIPWIRE_API_KEY
(or TRIPWIRE_API_AUTH_STRING). The Airflow plugin and callbacks are in
`tripwire_client.airflow`.
"""

from tripwire_client.config import api_auth_headers, resolve_api_url, retry_delay
from tripwire_client.emitter import Emitter, default_emitter, emit_event, flush
from tripwire_client.event import build_event, related_resource, uuid7
from tripwire_client.sender import Outcome, send_batch

__all__ = [
    "Emitter",
    "Outcome",
    "api_auth_headers",
    "build_event",
    "default_emitter",
    "emit_event",
    "flush",
    "related_resource",
    "resolve_api_url",
    "retry_delay",
    "send_batch",
    "uuid7",
]
