"""Automations (and connections) from YAML or JSON files, with every error reported by
file, line and field.

A file may hold `automations: [...]` and `connections: [...]` (named Prefect servers
actions pick with `connection:`), `sources:` and `webhooks:` (both defined in events, below
this package, so read here directly), a list of automations (as `prefect automation inspect`
prints them) or a single automation. JSON is read as YAML, so Prefect's `--output json`
files load the same way.

Packages that build on triggers add their own top-level sections through `sections=`
(sla adds `slas:`), so their items get the same file:line: field errors without this
package importing them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import yaml
from pydantic import ValidationError
from yaml.nodes import MappingNode, Node, SequenceNode

from actions.connections import ConnectionDefinition
from events.sources import PrefectSource
from events.webhooks.model import WebhookDefinition
from triggers.automation import Automation

SUFFIXES = (".yaml", ".yml", ".json")
SECTIONS = ("automations", "connections", "sources", "webhooks")
DISCRIMINATORS = ("type", "kind")  # fields whose value pydantic puts in an error's loc

T = TypeVar("T")


@dataclass(frozen=True)
class Section(Generic[T]):
    """A further top-level section: how to validate one item (raising pydantic's
    ValidationError), and what to do with each valid one and its file:line."""

    validate: Callable[[Any], T]
    add: Callable[[T, str], None]


@dataclass(frozen=True)
class DefinitionError:
    """One problem in a definitions file."""

    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.field + ': ' if self.field else ''}{self.message}"


@dataclass
class Definitions:
    """What a set of files defines, and what is wrong with them."""

    automations: list[Automation] = field(default_factory=list)
    origins: list[str] = field(default_factory=list)  # file:line of each automation
    connections: list[ConnectionDefinition] = field(default_factory=list)
    connection_origins: list[str] = field(default_factory=list)  # file:line of each
    sources: list[PrefectSource] = field(default_factory=list)  # Prefect servers to follow
    source_origins: list[str] = field(default_factory=list)  # file:line of each
    webhooks: list[WebhookDefinition] = field(default_factory=list)  # POST /hooks/<slug>
    webhook_origins: list[str] = field(default_factory=list)  # file:line of each
    errors: list[DefinitionError] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def add_automation(self, automation: Automation, origin: str) -> None:
        """Keep a valid automation and where it is defined."""
        self.automations.append(automation)
        self.origins.append(origin)

    def add_connection(self, connection: ConnectionDefinition, origin: str) -> None:
        """Keep a valid connection and where it is defined."""
        self.connections.append(connection)
        self.connection_origins.append(origin)

    def add_source(self, source: PrefectSource, origin: str) -> None:
        """Keep a valid source and where it is defined."""
        self.sources.append(source)
        self.source_origins.append(origin)

    def add_webhook(self, webhook: WebhookDefinition, origin: str) -> None:
        """Keep a valid webhook and where it is defined."""
        self.webhooks.append(webhook)
        self.webhook_origins.append(origin)


def _follow(node: Node, loc: Sequence[int | str]) -> tuple[int, str]:
    """The line of the deepest node `loc` reaches, and the path as written in the file."""
    path: list[str] = []
    tagged: Node | None = None
    for part in loc:
        child: Node | None = None
        if isinstance(node, MappingNode):
            values = {k.value: v for k, v in node.value}
            tag = any(getattr(values.get(d), "value", None) == part for d in DISCRIMINATORS)
            if tag and node is not tagged:
                tagged = node  # a union's tag comes once, and may equal a field's name
                continue
            child = values.get(str(part))
        elif isinstance(node, SequenceNode) and isinstance(part, int) and part < len(node.value):
            child = node.value[part]
        if child is None:
            continue  # a union tag pydantic adds, or a missing key: stay on the parent
        node = child
        path.append(f"[{part}]" if isinstance(part, int) else f".{part}")
    return node.start_mark.line + 1, "".join(path).lstrip(".")


def _message(error: Any) -> str:
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "missing":
        return f"'{error['loc'][-1]}' is required"
    if error["type"] == "extra_forbidden":
        return "is not a known field (check the spelling)"
    if error["type"] == "too_short" and error["ctx"]["min_length"] == 1:
        return "must not be empty"
    if error["type"] == "union_tag_not_found":
        return f"{error['ctx']['discriminator']} is required"
    return message


def _section(
    data: Any, node: Node, name: str, file: str, out: Definitions
) -> list[tuple[Any, Node]]:
    """The items of the `name:` section of a mapping, each with its node."""
    if not (isinstance(data, dict) and isinstance(node, MappingNode)) or name not in data:
        return []
    value = {k.value: v for k, v in node.value}[name]  # the last one, as safe_load reads
    items = data[name] or []
    if isinstance(items, list) and isinstance(value, SequenceNode):
        return list(zip(items, value.value, strict=True))
    out.errors.append(DefinitionError(file, value.start_mark.line + 1, name, "must be a list"))
    return []


def _documents(
    data: Any, node: Node, file: str, known: Sequence[str], out: Definitions
) -> list[tuple[Any, Node]]:
    if isinstance(data, list) and isinstance(node, SequenceNode):
        return list(zip(data, node.value, strict=True))
    if isinstance(data, dict) and isinstance(node, MappingNode):
        sections = {k.value: (k, v) for k, v in node.value}
        if not any(s in data for s in known) and "name" in data:
            return [(data, node)]  # a single automation
        use = ", ".join(f"{s}:" for s in known[:-1]) + f" or {known[-1]}:"
        for name, (key, _value) in sections.items():
            if name not in known:
                out.errors.append(
                    DefinitionError(
                        file, key.start_mark.line + 1, name, f"is not a known section; use {use}"
                    )
                )
        return _section(data, node, "automations", file, out)
    out.errors.append(
        DefinitionError(
            file,
            node.start_mark.line + 1,
            "",
            "expected automations: [...], a list of automations, or one automation",
        )
    )
    return []


def load_text(
    text: str,
    file: str,
    into: Definitions | None = None,
    *,
    sections: Mapping[str, Section[Any]] | None = None,
) -> Definitions:
    """Automations, connections and any further `sections` in one document's text; errors
    name `file`."""
    out = into if into is not None else Definitions()
    sections = sections or {}
    out.files.append(file)
    # One parse for both: building the data resolves merge keys (`<<: *base`) in the node
    # too, so the node's keys are the data's keys.
    try:
        loader = yaml.SafeLoader(text)
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except RecursionError:  # PyYAML composes and builds recursively
        out.errors.append(DefinitionError(file, None, "", "not valid YAML/JSON: nested too deeply"))
        return out
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        out.errors.append(
            DefinitionError(
                file, mark.line + 1 if mark else None, "", f"not valid YAML/JSON: {problem}"
            )
        )
        return out
    if node is None:
        return out  # an empty file defines nothing
    documents = _documents(data, node, file, (*SECTIONS, *sections), out)
    _items(documents, "", Section(Automation.model_validate, out.add_automation), file, out)
    connections = _section(data, node, "connections", file, out)
    _items(
        connections,
        "connections",
        Section(ConnectionDefinition.model_validate, out.add_connection),
        file,
        out,
    )
    sources = _section(data, node, "sources", file, out)
    _items(sources, "sources", Section(PrefectSource.model_validate, out.add_source), file, out)
    webhooks = _section(data, node, "webhooks", file, out)
    _items(
        webhooks, "webhooks", Section(WebhookDefinition.model_validate, out.add_webhook), file, out
    )
    for name, section in sections.items():
        _items(_section(data, node, name, file, out), name, section, file, out)
    return out


def _items(
    items: list[tuple[Any, Node]], name: str, section: Section[Any], file: str, out: Definitions
) -> None:
    """Validate each item, adding the valid ones; errors are named `name[i].field`."""
    for index, (item, item_node) in enumerate(items):
        try:
            value = section.validate(item)
        except ValidationError as exc:
            for error in exc.errors():
                line, path = _follow(item_node, error["loc"])
                if name:
                    path = f"{name}[{index}]" + (f".{path}" if path else "")
                out.errors.append(DefinitionError(file, line, path, _message(error)))
        else:
            section.add(value, f"{file}:{item_node.start_mark.line + 1}")


def _files(paths: Iterable[Path]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.suffix in SUFFIXES and p.is_file())
        else:
            found.append(path)
    return found


def load_paths(
    paths: Iterable[Path],
    into: Definitions | None = None,
    *,
    sections: Mapping[str, Section[Any]] | None = None,
) -> Definitions:
    """Automations, connections and any further `sections` from files and folders (*.yaml,
    *.yml, *.json, recursively); an automation or connection name defined twice is an error
    naming both places (`duplicates` does the same for further sections)."""
    out = into if into is not None else Definitions()
    for path in _files(paths):
        try:
            text = path.read_text()
        except OSError as exc:
            out.errors.append(DefinitionError(str(path), None, "", f"cannot read: {exc.strerror}"))
            continue
        load_text(text, str(path), out, sections=sections)
    duplicates([a.name for a in out.automations], out.origins, "name", "", out)
    names = [c.name for c in out.connections]
    duplicates(names, out.connection_origins, "name", "connection ", out)
    duplicates([s.name for s in out.sources], out.source_origins, "name", "source ", out)
    duplicates([w.slug for w in out.webhooks], out.webhook_origins, "slug", "webhook ", out)
    return out


def duplicates(
    names: list[str], origins: list[str], field: str, what: str, out: Definitions
) -> None:
    """An error at the second (and later) place a name is defined, naming the others."""
    places: dict[str, list[str]] = {}
    for name, origin in zip(names, origins, strict=True):
        places.setdefault(name, []).append(origin)
    for name, where in places.items():
        if len(where) > 1:
            file, _, line = where[-1].rpartition(":")
            out.errors.append(
                DefinitionError(
                    file,
                    int(line),
                    field,
                    f"{what}{name!r} is also defined at {', '.join(where[:-1])}; "
                    "names must be unique",
                )
            )
