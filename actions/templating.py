"""Templates for actions: events' sandboxed templates (`events.templating`), failing with
actions' TemplateError so the runner does not retry them."""

from __future__ import annotations

from actions.errors import TemplateError
from events import templating


class Templates(templating.Templates):
    """The sandboxed environment with `secret()`, built once per worker."""

    error = TemplateError
