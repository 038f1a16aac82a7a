"""The Airflow plugin, found through the `airflow.plugins` entry point of tripwire-client."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tripwire_client.airflow import listener

if TYPE_CHECKING:
    # Airflow is not installed where tripwire itself is type-checked.
    AirflowPlugin = object
else:
    try:
        from airflow.plugins_manager import AirflowPlugin
    except ImportError:  # an Airflow 3 worker with the task SDK only
        from airflow.sdk.plugins_manager import AirflowPlugin


class TripwirePlugin(AirflowPlugin):
    """Registers the listener that sends DAG-run and task-instance events to tripwire."""

    name = "tripwire"
    listeners = [listener]  # noqa: RUF012 (Airflow reads this class attribute)
