"""What a definitions file may hold, and applying all of it at once.

Usage::

    loaded = load_paths([Path("definitions/")])   # every error: file:line: field: message
    changes = await apply(db, loaded.by_section, prune=True)   # {"automations": [...], ...}

`SECTIONS` is the one list of the sections: the model one item validates as, and the
kind (events.reconcile) it is stored as. The loader (`tripwire validate`), `tripwire
apply`, `POST /api/definitions/apply` and the reference page all read it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncEngine

from actions.connections import CONNECTIONS, ConnectionDefinition
from alerts.silences import INHIBIT_RULES, RECURRING_SILENCES, InhibitRule, RecurringSilence
from events import loading
from events.loading import Section
from events.reconcile import Change, applying, reconcile
from events.sources import PrefectSource
from events.webhooks.model import WebhookDefinition
from events.webhooks.store import WEBHOOKS
from sla.model import SLA
from sla.prefect_slas import PrefectDeployment
from sla.prefect_triggers import to_automations
from sla.store import DEPLOYMENT_SLAS, DEPLOYMENT_TRIGGERS, SLAS
from triggers.automation import Automation
from triggers.repository import AUTOMATIONS

# In the order `apply` stores them: connections before the automations whose actions
# name them. Automations are the default section: a file that is a list of automations,
# or one automation (as `prefect automation inspect` prints them), holds automations.
SECTIONS: tuple[Section, ...] = (
    Section(
        "connections",
        ConnectionDefinition,
        "connection",
        "Named Prefect servers that actions pick with `connection:`.",
        kind=CONNECTIONS,
    ),
    Section(
        "sources",
        PrefectSource,
        "source",
        "Prefect servers whose event stream the api role follows.",
    ),
    Section(
        "webhooks",
        WebhookDefinition,
        "webhook",
        "Endpoints at `POST /hooks/<slug>` that turn requests into events.",
        key="slug",
        kind=WEBHOOKS,
    ),
    Section(
        "slas",
        SLA,
        "SLA",
        "Deadlines, durations and freshness that events must meet.",
        kind=SLAS,
    ),
    Section(
        "deployments",
        PrefectDeployment,
        "deployment",
        "Prefect deployments with their SLAs (`sla:`: TimeToCompletion, Lateness and "
        "Frequency) and triggers (`triggers:`, each an automation that runs the "
        "deployment), as prefect.yaml lists them.",
        kind=DEPLOYMENT_SLAS,
        also=(("automations", DEPLOYMENT_TRIGGERS),),
    ),
    Section(
        "silences",
        RecurringSilence,
        "silence",
        "Maintenance windows: notifications about the alerts they match are held back on a "
        "cron schedule.",
        kind=RECURRING_SILENCES,
    ),
    Section(
        "inhibit",
        InhibitRule,
        "inhibition rule",
        "While an alert `when` selects fires, the alerts `mute` selects are not notified.",
        kind=INHIBIT_RULES,
    ),
    Section(
        "automations",
        Automation,
        "automation",
        "Triggers and the actions they run.",
        kind=AUTOMATIONS,
        default=True,
    ),
)

APPLIED = tuple(s for s in SECTIONS if s.kind is not None)


class Definitions(loading.Definitions):
    """What a set of files defines, by section, and what is wrong with them."""

    @property
    def automations(self) -> list[Automation]:
        return self.of("automations")

    @property
    def connections(self) -> list[ConnectionDefinition]:
        return self.of("connections")

    @property
    def slas(self) -> list[SLA]:
        return self.of("slas")

    @property
    def deployments(self) -> list[PrefectDeployment]:
        return self.of("deployments")

    @property
    def deployment_automations(self) -> list[Automation]:
        """The automations the deployments' triggers become, as apply stores them."""
        return [a for d in self.deployments for a in to_automations(d.name, d.triggers or [])]

    @property
    def silences(self) -> list[RecurringSilence]:
        return self.of("silences")

    @property
    def inhibit(self) -> list[InhibitRule]:
        return self.of("inhibit")

    @property
    def sources(self) -> list[PrefectSource]:
        return self.of("sources")

    @property
    def webhooks(self) -> list[WebhookDefinition]:
        return self.of("webhooks")


def load_text(text: str, file: str) -> Definitions:
    """Every section in one document's text; errors name `file`."""
    out = Definitions()
    loading.load_text(text, file, SECTIONS, out)
    return out


def load_paths(paths: Iterable[Path]) -> Definitions:
    """Every section from files and folders; a name defined twice is an error naming both
    places."""
    out = Definitions()
    loading.load_paths(paths, SECTIONS, out)
    return out


class DefinitionsBody(BaseModel):
    """Body of POST /api/definitions/apply: every kind a definitions file applies; a kind
    left out, or empty, is left alone."""

    model_config = ConfigDict(extra="forbid")

    connections: list[ConnectionDefinition] = Field(
        default_factory=list, description="Created or updated by name."
    )
    webhooks: list[WebhookDefinition] = Field(
        default_factory=list, description="Created or updated by slug."
    )
    slas: list[SLA] = Field(default_factory=list, description="Created or updated by name.")
    deployments: list[PrefectDeployment] = Field(
        default_factory=list,
        description="Prefect deployments: each one's `sla:` list replaces its SLAs, its "
        "`triggers:` list the automations of its triggers.",
    )
    silences: list[RecurringSilence] = Field(
        default_factory=list, description="Maintenance windows, created or updated by name."
    )
    inhibit: list[InhibitRule] = Field(
        default_factory=list, description="Inhibition rules, created or updated by name."
    )
    automations: list[Automation] = Field(
        default_factory=list, description="Created or updated by name."
    )


async def apply(
    db: AsyncEngine,
    wanted: Mapping[str, Sequence[Any]],
    *,
    prune: bool = False,
    dry_run: bool = False,
) -> dict[str, list[Change]]:
    """Apply every kind in `wanted` (section -> items) in one transaction: all of them or,
    when one is refused (ApplyRefused), none. A kind with no items is left alone, with
    `prune` too: files that define only SLAs never prune the automations. The automations
    of Prefect deployments' triggers are answered with the automations, first."""
    changes: dict[str, list[Change]] = {s.name: [] for s in APPLIED}
    async with applying(db, dry_run=dry_run) as conn:
        for section in APPLIED:
            assert section.kind is not None
            items = wanted.get(section.name) or []
            if not items:
                continue
            for answer, kind in ((section.name, section.kind), *section.also):
                changes[answer] += await reconcile(conn, kind, items, prune=prune, dry_run=dry_run)
    return changes
