"""tripwire for Airflow: the listener plugin (registered by entry point), callbacks, emit_event.

Importing this package does not import Airflow; the plugin module does.
"""

from tripwire_client.airflow.callbacks import emit_event, event_from_context, tripwire_callback
from tripwire_client.airflow.events import dag_run_event, task_instance_event

__all__ = [
    "dag_run_event",
    "emit_event",
    "event_from_context",
    "task_instance_event",
    "tripwire_callback",
]
