"""Sources tripwire follows: `sources:` in definition files, or the TRIPWIRE_PREFECT_*
settings. Only Prefect servers so far.

    sources:
      - type: prefect
        api_url: http://127.0.0.1:4200/api
        events: ["prefect.flow-run.*"]
"""

from __future__ import annotations

import re
from fnmatch import fnmatchcase
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

_WILDCARD = re.compile(r"[*?\[]")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class PrefectSource(BaseModel):
    """A Prefect server whose event stream tripwire republishes onto its bus."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["prefect"] = Field(description="The kind of source; only `prefect` so far.")
    name: str = Field(
        default="prefect",
        description="Names the source in /api/health and in the resource "
        "tripwire.source.<name> of its connected/disconnected events.",
    )
    api_url: str = Field(description="The Prefect API root, e.g. http://127.0.0.1:4200/api.")
    events: list[str] = Field(
        default_factory=list,
        description="Event names to follow, as globs (prefect.flow-run.*); empty = all.",
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("use letters, digits, '.', '-' and '_' only")
        return value

    @field_validator("api_url")
    @classmethod
    def _api_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https:// (the Prefect API root, …/api)")
        return value.rstrip("/")

    def server_prefixes(self) -> list[str]:
        """Name prefixes for Prefect's server-side filter; [] = no server-side filter.

        Prefect filters names by prefix only, so each glob is cut at its first wildcard
        and `wants` then tests the exact glob on each event that arrives.
        """
        prefixes = [_WILDCARD.split(glob, maxsplit=1)[0] for glob in self.events]
        if not prefixes or "" in prefixes:
            return []  # a glob starting with a wildcard: every name may match
        return sorted(set(prefixes))

    def wants(self, event_name: str) -> bool:
        """Whether an event name matches one of the globs (all do when there are none)."""
        return not self.events or any(fnmatchcase(event_name, glob) for glob in self.events)
