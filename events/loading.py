"""Definition files (YAML or JSON), with every error reported by file, line and field.

Usage::

    sections = [Section("webhooks", WebhookDefinition, "webhook", key="slug"), ...]
    loaded = load_paths([Path("definitions/")], sections)
    for error in loaded.errors:
        print(error)              # definitions/hooks.yaml:7: webhooks[0].slug: ...
    hooks = loaded.of("webhooks")

A file is a mapping of sections (`automations: [...]`, `webhooks: [...]`), or, for the
`default` section, a list of its items or a single one: Prefect's exports are a list of
automations (or one), and JSON is read as YAML, so `--output json` files load the same
way. A Prefect project file (prefect.yaml) gives its known sections only. This module
knows no section of its own: the composition root says which there are
(tripwire.definitions), so each package's models stay in their package.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml
from pydantic import TypeAdapter, ValidationError
from yaml.nodes import MappingNode, Node, SequenceNode

from events.reconcile import Kind

SUFFIXES = (".yaml", ".yml", ".json")
DISCRIMINATORS = ("type", "kind")  # fields whose value pydantic puts in an error's loc
# Prefect's project file: its own keys (name, prefect-version, build, push, pull ...) are
# Prefect's, so only the sections tripwire knows (its `deployments:`) are read from it.
PROJECT_FILES = ("prefect.yaml", "prefect.yml")


@dataclass(frozen=True)
class Section:
    """One top-level section of a definitions file: what one item validates as, and the
    kind `apply` stores it as (None: not applied, read at start-up)."""

    name: str  # the top-level key: "webhooks"
    model: Any  # one item: a pydantic model or an annotated union of them
    noun: str  # one item in messages: "webhook"
    description: str = ""  # for the reference page
    key: str = "name"  # the field that names an item: unique across the files
    kind: Kind[Any] | None = None
    default: bool = False  # a file that is a list of items, or one item, holds these
    # More kinds the items stand for, each with the section whose answer its changes join
    # (a Prefect deployment's triggers are applied as automations).
    also: tuple[tuple[str, Kind[Any]], ...] = ()

    def __post_init__(self) -> None:
        for kind in (self.kind, *(kind for _, kind in self.also)):
            if kind is not None and (kind.section, kind.key) != (self.name, self.key):
                raise ValueError(f"section {self.name!r} is stored as {kind.section!r}")

    @cached_property
    def adapter(self) -> TypeAdapter[Any]:
        """Validates one item (raising pydantic's ValidationError)."""
        return TypeAdapter(self.model)


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
    """What a set of files defines, by section, and what is wrong with them."""

    by_section: dict[str, list[Any]] = field(default_factory=dict)  # the valid items
    origins: dict[str, list[str]] = field(default_factory=dict)  # file:line of each
    errors: list[DefinitionError] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def of(self, section: str) -> list[Any]:
        """The valid items of a section, in the order the files hold them."""
        return self.by_section.setdefault(section, [])

    def add(self, section: str, item: Any, origin: str) -> None:
        """Keep a valid item and where it is defined."""
        self.of(section).append(item)
        self.origins.setdefault(section, []).append(origin)


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


def prefect_project(data: Any, file: str) -> bool:
    """The document is a Prefect project file (prefect.yaml)."""
    named = Path(file).name in PROJECT_FILES
    return isinstance(data, dict) and ("prefect-version" in data or named)


def _ordered(sections: Sequence[Section]) -> list[Section]:
    """The default section first (it is read and named first), then the others."""
    ordered = sorted(sections, key=lambda s: not s.default)
    if not ordered or not ordered[0].default:
        raise ValueError("one section must be the default")
    return ordered


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
    data: Any, node: Node, file: str, sections: Sequence[Section], out: Definitions
) -> list[tuple[Any, Node]]:
    """The default section's items: the file's list, its one item, or its section."""
    default, known = sections[0], [s.name for s in sections]
    if prefect_project(data, file):
        return []
    if isinstance(data, list) and isinstance(node, SequenceNode):
        return list(zip(data, node.value, strict=True))
    if isinstance(data, dict) and isinstance(node, MappingNode):
        if not any(s in data for s in known) and "name" in data:
            return [(data, node)]  # a single item
        use = ", ".join(f"{s}:" for s in known[:-1]) + f" or {known[-1]}:"
        for name, key in {k.value: k for k, _v in node.value}.items():
            if name not in known:
                out.errors.append(
                    DefinitionError(
                        file, key.start_mark.line + 1, name, f"is not a known section; use {use}"
                    )
                )
        return _section(data, node, default.name, file, out)
    out.errors.append(
        DefinitionError(
            file,
            node.start_mark.line + 1,
            "",
            f"expected {default.name}: [...], a list of {default.name}, or one {default.noun}",
        )
    )
    return []


def load_text(
    text: str, file: str, sections: Sequence[Section], into: Definitions | None = None
) -> Definitions:
    """Every section's items in one document's text; errors name `file`."""
    out = into if into is not None else Definitions()
    ordered = _ordered(sections)
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
    # The default section's errors carry no section name (`trigger.within`), as in a file
    # that is a list of automations.
    _items(_documents(data, node, file, ordered, out), ordered[0], "", file, out)
    for section in ordered[1:]:
        found = _section(data, node, section.name, file, out)
        _items(found, section, section.name, file, out)
    return out


def _items(
    items: list[tuple[Any, Node]], section: Section, path: str, file: str, out: Definitions
) -> None:
    """Validate each item, keeping the valid ones; errors are named `path[i].field`."""
    for index, (item, item_node) in enumerate(items):
        try:
            value = section.adapter.validate_python(item)
        except ValidationError as exc:
            for error in exc.errors():
                line, where = _follow(item_node, error["loc"])
                if path:
                    where = f"{path}[{index}]" + (f".{where}" if where else "")
                out.errors.append(DefinitionError(file, line, where, _message(error)))
        else:
            out.add(section.name, value, f"{file}:{item_node.start_mark.line + 1}")


def _files(paths: Iterable[Path]) -> list[Path]:
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.suffix in SUFFIXES and p.is_file())
        else:
            found.append(path)
    return found


def load_paths(
    paths: Iterable[Path], sections: Sequence[Section], into: Definitions | None = None
) -> Definitions:
    """Every section's items from files and folders (*.yaml, *.yml, *.json, recursively);
    a name defined twice in one section is an error naming both places."""
    out = into if into is not None else Definitions()
    for path in _files(paths):
        try:
            text = path.read_text()
        except OSError as exc:
            out.errors.append(DefinitionError(str(path), None, "", f"cannot read: {exc.strerror}"))
            continue
        load_text(text, str(path), sections, out)
    for section in _ordered(sections):
        names = [str(getattr(item, section.key)) for item in out.of(section.name)]
        what = "" if section.default else f"{section.noun} "  # "'x' is also" for the default
        _duplicates(names, out.origins.get(section.name, []), section.key, what, out)
    return out


def _duplicates(
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
