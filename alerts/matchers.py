"""Label matchers: which alerts a silence or an inhibition rule covers.

A matcher is `label=value`, `label!=value`, `label=~regex` or `label!~regex`. `=` and `!=`
take the globs triggers take (`*`, `?`, `[abc]`, case-sensitive; see
triggers.matching.glob_matches); `=~` and `!~` take a regular expression that must match
the whole value.

An alert's label is a string or a list of strings (tags). A positive matcher (`=`, `=~`)
holds when any element matches; a negative one (`!=`, `!~`) when no element does, so
`tags!=staging` holds when no tag is staging. A missing label, and an empty list, read as
the empty string: `env!=prod` holds for an alert without `env`. (Triggers differ: there a
missing label matches nothing, not even a `!` value.)

A list of matchers holds when every matcher does, so an empty list holds for every alert:
silences and inhibition rules take `NonEmptyMatchers`, which refuses one.

Definitions write matchers as a list of strings, `["automation=etl-*", "severity!=info"]`,
or as a mapping in the shape of a trigger's `match`, `{tags: warehouse, automation:
"!etl-*"}`, which reads as triggers read it: a `!` value is `!=`, and the positive values
of a list are ORed.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, cast

from pydantic import BeforeValidator, Field, GetCoreSchemaHandler
from pydantic_core import CoreSchema, core_schema

from triggers.matching import glob_matches

Operator = Literal["=", "!=", "=~", "!~"]
LabelValue = str | Sequence[str]
Labels = Mapping[str, LabelValue]

OPERATORS: tuple[Operator, ...] = ("=", "!=", "=~", "!~")
SHAPES = "label=value, label!=value, label=~regex or label!~regex"

# The leftmost operator in a text; where two start at the same place, the longer one
# (alternation tries them in order), so `a!=b` is `!=` and `a=~b` is `=~`.
_OPERATOR = re.compile(r"!=|=~|!~|=")
_NEGATIVE = frozenset({"!=", "!~"})
_REGEX = frozenset({"=~", "!~"})
_GLOB_SYNTAX = re.compile(r"[*?\[]")


@dataclass(frozen=True)
class Matcher:
    """One condition on one label; a regex is compiled once, here."""

    name: str
    op: Operator
    value: str
    _pattern: re.Pattern[str] | None = field(init=False, repr=False, compare=False, default=None)

    def __post_init__(self) -> None:
        if self.op not in OPERATORS:
            raise ValueError(f"{self.op!r} is not an operator; use one of {', '.join(OPERATORS)}")
        # A name must survive being written out and parsed back (see __str__).
        if not self.name or self.name != self.name.strip() or _OPERATOR.search(self.name):
            raise ValueError(
                f"{self.name!r} is not a label name: it must not be empty, start or end "
                "with a space, or hold an operator (= != =~ !~)"
            )
        if self.op in _REGEX:
            try:
                pattern = re.compile(self.value)
            except re.error as exc:
                raise ValueError(f"matcher {self} has a bad regular expression: {exc}") from None
            object.__setattr__(self, "_pattern", pattern)

    def __str__(self) -> str:
        return f"{self.name}{self.op}{self.value}"

    def matches(self, labels: Labels) -> bool:
        """The alert's labels satisfy this matcher."""
        found = any(self._matches_value(actual) for actual in _values(labels.get(self.name)))
        return not found if self.op in _NEGATIVE else found

    def _matches_value(self, actual: str) -> bool:
        if self._pattern is not None:
            return self._pattern.fullmatch(actual) is not None
        return glob_matches(actual, self.value)

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: type[Any], handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        # In a model: from a string (or a Matcher), out as the same string.
        return core_schema.no_info_plain_validator_function(
            _coerce,
            json_schema_input_schema=core_schema.str_schema(),
            serialization=core_schema.to_string_ser_schema(when_used="always"),
        )


def _values(value: LabelValue | None) -> Sequence[str]:
    if value is None:
        return ("",)
    if isinstance(value, str):
        return (value,)
    return value or ("",)


def matches(matchers: Iterable[Matcher], labels: Labels) -> bool:
    """Every matcher holds for the labels; no matchers hold for every alert."""
    return all(matcher.matches(labels) for matcher in matchers)


def parse_matcher(text: str) -> Matcher:
    """A matcher from `label=value`, `label!=value`, `label=~regex` or `label!~regex`.

    The first operator splits the text, so values may hold `=`; spaces around the label
    and the value are dropped."""
    found = _OPERATOR.search(text)
    if found is None:
        raise ValueError(f"{text!r} is not a matcher (no operator); write {SHAPES}")
    name, value = text[: found.start()].strip(), text[found.end() :].strip()
    if not name:
        raise ValueError(f"{text!r} is not a matcher (no label name); write {SHAPES}")
    return Matcher(name, cast(Operator, found.group()), value)


def matchers_from_mapping(spec: Mapping[str, str | Sequence[str]]) -> list[Matcher]:
    """Matchers from a trigger-style `match` mapping: `label: glob` is `label=glob`,
    `label: "!glob"` is `label!=glob`, and in a list of values the positive ones are ORed
    (one `=~` matcher) and each `!` one is a `!=` matcher."""
    matchers: list[Matcher] = []
    for name, given in spec.items():
        values = [given] if isinstance(given, str) else given
        if isinstance(values, str | bytes) or not isinstance(values, Sequence):
            raise ValueError(f"{name}: {given!r} is not a string or a list of strings")
        if not values:
            raise ValueError(f"{name}: the list of values is empty; give at least one")
        if not all(isinstance(value, str) for value in values):
            raise ValueError(f"{name}: {given!r} is not a string or a list of strings")
        positives = [value for value in values if not value.startswith("!")]
        if len(positives) == 1:
            matchers.append(Matcher(name, "=", positives[0]))
        elif positives:
            matchers.append(Matcher(name, "=~", "|".join(_glob_regex(p) for p in positives)))
        matchers.extend(Matcher(name, "!=", value[1:]) for value in values if value[:1] == "!")
    return matchers


def _glob_regex(glob: str) -> str:
    # fnmatch.translate gives the very regex fnmatchcase (glob_matches) matches with, so
    # ORing globs this way keeps their meaning; plain values stay readable as re.escape.
    return fnmatch.translate(glob) if _GLOB_SYNTAX.search(glob) else re.escape(glob)


def _coerce(value: Any) -> Matcher:
    if isinstance(value, Matcher):
        return value
    if isinstance(value, str):
        return parse_matcher(value)
    raise ValueError(f"{value!r} is not a matcher; write {SHAPES}")


def _from_mapping(value: Any) -> Any:
    # The mapping form becomes matchers here; a list goes on to be read item by item.
    return matchers_from_mapping(value) if isinstance(value, Mapping) else value


# A definition's matchers, from a list of strings or a trigger-style mapping; written
# back as a list of strings. May be empty (and then matches every alert).
MatcherList = Annotated[
    list[Matcher],
    BeforeValidator(_from_mapping, json_schema_input_type=dict[str, str | list[str]] | list[str]),
]
# Matchers that must select something: an empty list would match every alert.
NonEmptyMatchers = Annotated[MatcherList, Field(min_length=1)]
