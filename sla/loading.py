"""Definition files with SLAs: `slas: [...]` beside `automations:` and `connections:`.

triggers' loader reads the files and reports errors (file:line: slas[0].deadline.cron:
...); this module plugs the `slas:` section into it, since triggers may not import sla.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from sla.model import SLA
from triggers import loading

_SLA: TypeAdapter[SLA] = TypeAdapter(SLA)


@dataclass
class Definitions(loading.Definitions):
    """Automations, connections and SLAs from a set of files, and what is wrong with them."""

    slas: list[SLA] = field(default_factory=list)
    sla_origins: list[str] = field(default_factory=list)  # file:line of each SLA

    def add_sla(self, sla: SLA, origin: str) -> None:
        """Keep a valid SLA and where it is defined."""
        self.slas.append(sla)
        self.sla_origins.append(origin)


def _sections(out: Definitions) -> dict[str, loading.Section[Any]]:
    return {"slas": loading.Section(_SLA.validate_python, out.add_sla)}


def load_text(text: str, file: str, into: Definitions | None = None) -> Definitions:
    """Automations, connections and SLAs in one document's text; errors name `file`."""
    out = into if into is not None else Definitions()
    loading.load_text(text, file, out, sections=_sections(out))
    return out


def load_paths(paths: Iterable[Path]) -> Definitions:
    """Automations, connections and SLAs from files and folders; a name defined twice is an
    error naming both places."""
    out = Definitions()
    loading.load_paths(paths, out, sections=_sections(out))
    loading.duplicates([s.name for s in out.slas], out.sla_origins, "name", "SLA ", out)
    return out
