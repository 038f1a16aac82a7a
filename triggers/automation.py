"""An automation: a trigger plus actions, in Prefect's shape."""

from __future__ import annotations

from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from actions.model import Action
from triggers.model import Trigger


class Automation(BaseModel):
    """What to watch for and what to do; Prefect's exported automations load unchanged."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, description="Unique; apply updates by name.")
    description: str = Field(default="", description="What it is for.")
    enabled: bool = Field(default=True, description="A disabled automation never fires.")
    tags: list[str] = Field(default_factory=list, description="Free-form tags.")
    trigger: Trigger = Field(description="When it fires.")
    actions: list[Action] = Field(default_factory=list, description="Run when it fires.")
    actions_on_trigger: list[Action] = Field(
        default_factory=list, description="Also run when it fires (Prefect's name)."
    )
    actions_on_resolve: list[Action] = Field(
        default_factory=list, description="Run when a proactive trigger's condition clears."
    )
    owner_resource: str | None = Field(default=None, description="Prefect: who owns it.")
    id: UUID | None = Field(default=None, description="Prefect's id, kept when given.")
