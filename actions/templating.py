"""Templates for actions: events' sandboxed templates (`events.templating`), failing with
actions' TemplateError so the runner does not retry them, with Prefect's filters
(`ui_url`, `ui_resource_events_url`, `flow_run_id`) besides Jinja's."""

from __future__ import annotations

from actions.errors import TemplateError
from actions.prefect_urls import FILTERS
from events import templating
from events.sandbox import MAX_SECONDS
from events.sandbox.filters import text_checked
from events.secrets import Secrets


class Templates(templating.Templates):
    """The sandboxed environment with `secret()` and Prefect's filters, built once per
    worker."""

    error = TemplateError

    def __init__(self, secrets: Secrets, *, max_seconds: float = MAX_SECONDS) -> None:
        super().__init__(secrets, max_seconds=max_seconds)
        self.env.filters.update({name: text_checked(name, f) for name, f in FILTERS.items()})
