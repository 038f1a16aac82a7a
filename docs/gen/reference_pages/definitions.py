"""The definitions file reference: every section and field, from the models that validate
them (their JSON Schema and descriptions), so the page cannot drift from the loader."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydantic import TypeAdapter

from events.loading import Section
from tripwire.definitions import SECTIONS

from .schema import (
    anchor,
    discriminated,
    fields_table,
    first_paragraph,
    model_order,
    ref_name,
    type_text,
    union_key,
)

LARGE_UNION = 6  # kinds; a union this large gets a heading of its own

INTRO = """\
# Definitions file

Automations, SLAs, webhooks, sources and connections are defined in YAML (or JSON) files.
`tripwire validate -f PATH` checks files and folders and names every error by file, line
and field; `tripwire apply -f PATH` sends them to a running engine; `tripwire up
--automations PATH` applies them at start-up. A file holds any of these top-level sections:

```text
{sections}
```

A file may also be a list of automations, or one automation, as
`prefect automation inspect --output yaml|json` prints them: Prefect's exports load
unchanged. Durations are written as seconds (`600`) or with a unit (`90s`, `10m`, `2h`,
`7d`). String fields of actions are templates (see
[Notifications and actions](../guides/notifications.md)).

This page is generated from the models that validate the files.
"""


def _schema(model: Any) -> dict[str, Any]:
    schema: dict[str, Any] = TypeAdapter(model).json_schema(mode="validation")
    return schema


def _root_name(schema: dict[str, Any]) -> str:
    """The model a section's items validate as: its own title, or the union's name."""
    return str(schema.get("title") or ref_name(schema) or "Item")


def _sections() -> list[Section]:
    """The sections as the loader reads them: automations (the default) first."""
    return sorted(SECTIONS, key=lambda s: not s.default)


def page() -> str:
    """The whole page as Markdown."""
    return "\n".join(_lines()) + "\n"


def _lines() -> Iterator[str]:
    yield INTRO.replace("{sections}", "\n".join(f"{s.name}: [...]" for s in _sections()))
    yield "| section | one item | what |"
    yield "|---|---|---|"
    defs: dict[str, Any] = {}
    roots: list[str] = []
    for section in _sections():
        schema = _schema(section.model)
        for name, definition in schema.pop("$defs", {}).items():
            if defs.setdefault(name, definition) != definition:
                raise ValueError(f"two different models are both named {name}")
        name = _root_name(schema) if "properties" in schema else f"{section.name}-item"
        defs.setdefault(name, schema)
        roots.append(name)
        item = f"[{name}](#{anchor(name)})" if "properties" in schema else type_text(schema)
        yield f"| `{section.name}` | {item} | {section.description} |"
    selectors: dict[str, str] = {}
    for definition in defs.values():
        selectors.update(discriminated(definition))
    named = _large_unions(defs)
    listed: set[frozenset[tuple[str, str]]] = set()
    for name in model_order(roots, defs):
        yield from _model(name, defs[name], selectors.get(name), named, listed)


def _large_unions(defs: dict[str, Any]) -> dict[frozenset[tuple[str, str]], str]:
    """Unions of many kinds (the actions) get a heading of their own, named after the first
    field that holds one, instead of every kind listed in every cell."""
    named: dict[frozenset[tuple[str, str]], str] = {}
    for definition in defs.values():
        for field, prop in definition.get("properties", {}).items():
            union = prop.get("items", prop)
            key = union_key(union)
            if key is not None and len(key) > LARGE_UNION and key not in named:
                named[key] = f"kinds-{field}"
    return named


def _model(
    name: str,
    schema: dict[str, Any],
    selector: str | None,
    named: dict[frozenset[tuple[str, str]], str],
    listed: set[frozenset[tuple[str, str]]],
) -> Iterator[str]:
    if name.endswith("-item"):
        return  # a section whose items are a union: the sections table lists its kinds
    title = f"`{selector}` ({name})" if selector else name
    yield ""
    yield f"## {title} {{ #{anchor(name)} }}"
    yield ""
    if description := schema.get("description"):
        yield first_paragraph(description)
        yield ""
    if "properties" not in schema:
        yield f"One of: {type_text(schema)}."
        return
    yield from fields_table(schema, named)
    for prop in schema["properties"].values():
        union = prop.get("items", prop)
        key = union_key(union)
        if key is not None and key in named and key not in listed:
            listed.add(key)  # listed once: later fields link to this heading
            yield from _union_section(named[key], union)


def _union_section(anchor_id: str, union: dict[str, Any]) -> Iterator[str]:
    field = union["discriminator"]["propertyName"]
    yield ""
    yield f"### The kinds, by `{field}` {{ #{anchor_id} }}"
    yield ""
    yield f"| `{field}` | model |"
    yield "|---|---|"
    for value, ref in sorted(union["discriminator"]["mapping"].items()):
        model = str(ref).rsplit("/", 1)[-1]
        yield f"| `{value}` | [{model}](#{anchor(model)}) |"
