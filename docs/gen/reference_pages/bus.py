"""The bus reference, from the AsyncAPI document the engine serves: each NATS subject, what
it carries and who reads it."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import unquote

from events.bus import Names
from tripwire.bus_description import bus_description

from .schema import cell

INTRO = """\
# Bus

The engine's roles meet on NATS. A running engine serves an AsyncAPI 3 document of its
subjects and messages at `/asyncapi.json`, beside the OpenAPI document of the HTTP API;
the same document, for the default namespace, is [here](asyncapi.json). Subjects and
streams take their prefix from `TRIPWIRE_NAMESPACE` (`tripwire` below).

This page is generated from that document.

| subject | message | what |
|---|---|---|
"""


def document() -> dict[str, Any]:
    """The AsyncAPI document for the default namespace."""
    return bus_description(Names(), "nats://127.0.0.1:4222")


def page(description: Mapping[str, Any]) -> str:
    """The whole page as Markdown."""
    return INTRO + "\n".join(_rows(description)) + "\n"


def _rows(description: Mapping[str, Any]) -> Iterator[str]:
    messages = description["components"]["messages"]
    for channel in description["channels"].values():
        payloads = []
        for ref in channel["messages"].values():
            message = messages[unquote(ref["$ref"]).rsplit("/", 1)[-1]]
            schema = unquote(message["payload"]["$ref"]).rsplit("/", 1)[-1]
            payloads.append(schema if ":" not in schema else "text")
        kinds = ", ".join(f"`{payload}`" for payload in payloads)
        yield f"| `{channel['address']}` | {kinds} | {cell(channel.get('description', ''))} |"
