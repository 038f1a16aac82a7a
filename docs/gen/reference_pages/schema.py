"""JSON Schema (as pydantic writes it) rendered as Markdown: a type in words, a default, and
a table of fields per model, with links between models on one page."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import timedelta
from typing import Any

Schema = Mapping[str, Any]

_DURATION_UNITS = (("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1))


def anchor(model: str) -> str:
    """The id of a model's heading on its page."""
    return f"model-{model.lower()}"


def cell(text: str) -> str:
    """Text that stays inside one Markdown table cell."""
    return " ".join(text.split()).replace("|", "\\|")


def ref_name(schema: Schema) -> str | None:
    """The model a `$ref` points to, if this schema is one."""
    ref = schema.get("$ref")
    return str(ref).rsplit("/", 1)[-1] if ref else None


def union_key(schema: Schema) -> frozenset[tuple[str, str]] | None:
    """What identifies a discriminated union: its selector values and models."""
    mapping = schema.get("discriminator", {}).get("mapping")
    return frozenset((str(k), str(v)) for k, v in mapping.items()) if mapping else None


def type_text(
    schema: Schema,
    link: bool = True,
    named: Mapping[frozenset[tuple[str, str]], str] | None = None,
) -> str:
    """A schema's type in words: `string`, `list of [Action](#...)`, `"a" | "b"`, ...;
    models are linked to their headings on the same page unless `link` is false, and a
    union listed in `named` links to its own heading instead of listing every kind."""
    if (name := ref_name(schema)) is not None:
        return f"[{name}](#{anchor(name)})" if link else name
    if named and (key := union_key(schema)) is not None and key in named:
        selector = schema["discriminator"]["propertyName"]
        return f"[one of {len(key)} kinds](#{named[key]}) by `{selector}`"
    if "const" in schema:
        return f"`{json.dumps(schema['const'])}`"
    if "enum" in schema:
        return " \\| ".join(f"`{json.dumps(value)}`" for value in schema["enum"])
    if (mapping := schema.get("discriminator", {}).get("mapping")) is not None:
        field = schema["discriminator"]["propertyName"]
        kinds = ", ".join(
            f"[`{value}`](#{anchor(str(ref).rsplit('/', 1)[-1])})" for value, ref in mapping.items()
        )
        return f"by `{field}`: {kinds}"
    for union in ("anyOf", "oneOf"):
        if union in schema:
            parts = [type_text(option, link, named) for option in schema[union]]
            return " or ".join(dict.fromkeys(part for part in parts if part != "null")) + (
                " or null" if "null" in parts else ""
            )
    kind = schema.get("type")
    if kind == "array":
        items = schema.get("items")
        return f"list of {type_text(items, link, named)}" if items else "list"
    if kind == "object":
        values = schema.get("additionalProperties")
        if isinstance(values, Mapping):
            return f"map of string to {type_text(values, link, named)}"
        return "object"
    if schema.get("format") == "duration":
        return "duration"
    if kind is None:
        return "any"
    return str(kind)


def duration_text(value: timedelta) -> str:
    """`7d`, `10m`, `1h30m`: the way durations are written in settings and files."""
    seconds = value.total_seconds()
    if seconds == 0:
        return "0"
    parts = []
    rest = int(seconds)
    for unit, size in _DURATION_UNITS:
        count, rest = divmod(rest, size)
        if count:
            parts.append(f"{count}{unit}")
    fraction = seconds - int(seconds)
    if fraction:
        return f"{seconds:g}s"
    return "".join(parts)


def default_text(value: Any) -> str:
    """A default value as it would be written in YAML or the environment."""
    if isinstance(value, timedelta):
        return f"`{duration_text(value)}`"
    if isinstance(value, str):
        return f"`{value}`" if value else '`""`'
    if isinstance(value, (list, dict, int, float, bool)) or value is None:
        return f"`{json.dumps(value)}`"
    return f"`{value}`"


def fields_table(
    model: Schema, named: Mapping[frozenset[tuple[str, str]], str] | None = None
) -> Iterator[str]:
    """One row per property: name, type, default (or required), description."""
    properties: Mapping[str, Schema] = model.get("properties", {})
    if not properties:
        return
    required = set(model.get("required", ()))
    yield "| field | type | default | description |"
    yield "|---|---|---|---|"
    for name, prop in properties.items():
        if name in required:
            default = "**required**"
        elif "default" in prop:
            default = default_text(prop["default"])
        else:
            default = ""
        description = cell(prop.get("description", ""))
        yield f"| `{name}` | {cell(type_text(prop, named=named))} | {default} | {description} |"


def referenced(schema: Any) -> Iterator[str]:
    """Every model a schema refers to, in the order they appear."""
    if isinstance(schema, Mapping):
        if (name := ref_name(schema)) is not None:
            yield name
        for key, value in schema.items():
            if key != "$defs":
                yield from referenced(value)
    elif isinstance(schema, list):
        for item in schema:
            yield from referenced(item)


def model_order(roots: list[str], defs: Mapping[str, Schema]) -> list[str]:
    """Models breadth-first from the roots, so each is described after what uses it."""
    order: list[str] = []
    queue = list(roots)
    while queue:
        name = queue.pop(0)
        if name in order or name not in defs:
            continue
        order.append(name)
        queue.extend(referenced(defs[name]))
    return order


def first_paragraph(text: str) -> str:
    """A docstring's first paragraph: usage blocks and notes for developers stay out."""
    return " ".join(text.strip().split("\n\n", 1)[0].split())


def discriminated(schema: Any) -> dict[str, str]:
    """For every model picked by a discriminator: `type: run-deployment`, so its heading can
    say how a file selects it."""
    found: dict[str, str] = {}
    if isinstance(schema, Mapping):
        if (mapping := schema.get("discriminator", {}).get("mapping")) is not None:
            field = schema["discriminator"]["propertyName"]
            for value, ref in mapping.items():
                found[str(ref).rsplit("/", 1)[-1]] = f"{field}: {value}"
        for value in schema.values():
            found.update(discriminated(value))
    elif isinstance(schema, list):
        for item in schema:
            found.update(discriminated(item))
    return found
