"""The HTTP API reference, from the app's OpenAPI document: every route with its
parameters, body and answers."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from .schema import cell, first_paragraph, ref_name

INTRO = """\
# HTTP API

A running engine serves its OpenAPI document at `/openapi.json` and an interactive view at
`/docs`; the same document is [here](openapi.json). Errors are JSON
`{"detail": "...", "field": "..."}` naming the field at fault. With `TRIPWIRE_API_KEY` or
`TRIPWIRE_API_AUTH_STRING` set, every route but `/api/health` and `/metrics` needs
credentials; `POST /hooks/{slug}` is checked by the webhook's signature instead.

This page is generated from the OpenAPI document.
"""

METHODS = ("get", "post", "put", "patch", "delete")


def openapi() -> dict[str, Any]:
    """The OpenAPI document of an engine with default settings (nothing is started)."""
    from tripwire.app import create_app
    from tripwire.engine import Engine
    from tripwire.settings import Settings

    with tempfile.TemporaryDirectory() as home:
        app = create_app(Engine(Settings(home=Path(home))), manage_engine=False)
        document: dict[str, Any] = app.openapi()
    return document


def page(document: Mapping[str, Any]) -> str:
    """The whole page as Markdown."""
    return INTRO + "\n".join(_routes(document)) + "\n"


def _routes(document: Mapping[str, Any]) -> Iterator[str]:
    by_tag: dict[str, list[tuple[str, str, Mapping[str, Any]]]] = {}
    for path, item in document["paths"].items():
        for method in METHODS:
            if (operation := item.get(method)) is not None:
                tag = (operation.get("tags") or ["other"])[0]
                by_tag.setdefault(tag, []).append((method.upper(), path, operation))
    for tag, operations in by_tag.items():
        yield ""
        yield f"## {tag}"
        for method, path, operation in operations:
            yield from _operation(method, path, operation)


def _operation(method: str, path: str, operation: Mapping[str, Any]) -> Iterator[str]:
    yield ""
    yield f"### `{method} {path}`"
    yield ""
    summary = operation.get("description") or operation.get("summary") or ""
    if summary:
        yield first_paragraph(summary)
        yield ""
    parameters = operation.get("parameters", [])
    if parameters:
        yield "| parameter | in | type | what |"
        yield "|---|---|---|---|"
        for parameter in parameters:
            kind = _schema_text(parameter.get("schema", {}))
            required = " (required)" if parameter.get("required") else ""
            yield (
                f"| `{parameter['name']}`{required} | {parameter['in']} | {cell(kind)} | "
                f"{cell(parameter.get('description', ''))} |"
            )
        yield ""
    body = operation.get("requestBody", {}).get("content", {})
    if body:
        kinds = ", ".join(
            f"`{content_type}`" + (f" ({_schema_text(spec['schema'])})" if "schema" in spec else "")
            for content_type, spec in body.items()
        )
        yield f"Body: {kinds}."
        yield ""
    responses = operation.get("responses", {})
    if responses:
        yield "| answer | what |"
        yield "|---|---|"
        for status, response in responses.items():
            yield f"| {status} | {cell(response.get('description', ''))} |"


def _schema_text(schema: Mapping[str, Any]) -> str:
    if (name := ref_name(schema)) is not None:
        return name
    if "anyOf" in schema:
        return " or ".join(_schema_text(option) for option in schema["anyOf"])
    if schema.get("type") == "array":
        return f"list of {_schema_text(schema.get('items', {}))}"
    return str(schema.get("type", "any"))


def document_json(document: Mapping[str, Any]) -> str:
    """The OpenAPI document as published beside the page."""
    return json.dumps(document, indent=2) + "\n"
