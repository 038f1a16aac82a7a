"""The metrics reference, from the collectors registered with prometheus-client."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import REGISTRY

import events.metrics  # noqa: F401  (registers tripwire's collectors)

from .schema import cell

INTRO = """\
# Metrics

`GET /metrics` serves Prometheus text from every role, without auth. Counters are exposed
with `_total`; histograms add `_bucket`, `_sum` and `_count`. Labels stay bounded: no
event, resource or request ids, no URLs. prometheus-client adds the process's own
`process_*` and `python_*` metrics.

This page is generated from the registered collectors.

| metric | type | what |
|---|---|---|
"""


def page() -> str:
    """The whole page as Markdown."""
    return INTRO + "\n".join(_rows()) + "\n"


def _rows() -> Iterator[str]:
    families = {}
    for family in REGISTRY.collect():
        if family.name.startswith("tripwire_"):
            families[family.name] = family
    for name, family in sorted(families.items()):
        shown = f"{name}_total" if family.type == "counter" else name
        yield f"| `{shown}` | {family.type} | {cell(family.documentation)} |"
