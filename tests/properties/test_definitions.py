"""Properties of the definitions loader (events/loading.py, with the sections of
tripwire/definitions.py): whatever the file holds, `load_text` never raises; every problem
is a DefinitionError naming the file and, where there is one, a line of it."""

from __future__ import annotations

from typing import Any

import yaml
from hypothesis import given
from hypothesis import strategies as st

from events.loading import DefinitionError
from tests.properties import SETTINGS
from tripwire.definitions import load_text

FILE = "automations.yaml"

# Words the loader and the models look for, so generated documents get past the first
# checks and into validation, plus a few that are nothing.
KEYS = st.sampled_from(
    [
        "automations",
        "slas",
        "connections",
        "webhooks",
        "sources",
        "name",
        "trigger",
        "type",
        "kind",
        "expect",
        "after",
        "within",
        "threshold",
        "posture",
        "match",
        "match_related",
        "where",
        "for_each",
        "actions",
        "deadline",
        "cron",
        "timezone",
        "every",
        "grace",
        "slug",
        "url",
        "api_url",
        "triggers",
        "nothing",
    ]
)
VALUES = st.sampled_from(
    [
        "event",
        "compound",
        "sequence",
        "Reactive",
        "Proactive",
        "do-nothing",
        "call-webhook",
        "deadline",
        "duration",
        "freshness",
        "0 9 * * *",
        "10m",
        "99999999999999w",
        "prefect.flow-run.*",
        "payload.rows > `3`",
        "[",
        "",
    ]
)
SCALARS = (
    VALUES | st.integers() | st.floats(allow_nan=False) | st.booleans() | st.none() | st.text()
)
DOCUMENTS = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=5),
    max_leaves=25,
)

# Lines that exercise YAML's corners: anchors, aliases, merge keys, tags, flow style,
# several documents, complex keys, tabs.
TRICKY_LINES = st.sampled_from(
    [
        "base: &b {name: a, trigger: {type: event}}",
        "<<: *b",
        "sections: &s {automations: [{name: m}], slas: []}",
        "<<: *s",
        "automations: &list",
        "- *b",
        "- <<: *b",
        "  name: c",
        "slas: *list",
        "automations: !!binary aGVsbG8=",
        "automations: !!set {a, b}",
        "automations: !!omap [a: 1]",
        "automations: !unknown x",
        "---",
        "...",
        "? [a, b]",
        ": 1",
        "{",
        "[",
        "- ",
        "\t- x",
        "  - name: x",
        "    trigger: {type: event, within: 1e400}",
        "    actions: [{type: do-nothing}]",
        "connections: [{name: x, api_url: 'http://x'}]",
        "webhooks: [{slug: a}]",
        "slas: [{name: s, kind: deadline}]",
        "%YAML 1.1",
        "&a [*a]",
        "x: *undefined",
        "'unterminated",
        "\x00",
        "\ufeff",
    ]
)


def check(text: str) -> None:
    """The loader reports problems as DefinitionErrors on lines of the file; no raise."""
    lines = text.count("\n") + text.count("\r") + 2
    definitions = load_text(text, FILE)
    assert definitions.files == [FILE]
    for error in definitions.errors:
        assert isinstance(error, DefinitionError)
        assert error.file == FILE
        assert error.line is None or 1 <= error.line <= lines, (error, text)
        assert error.message
        assert str(error).startswith(FILE)
    for origin in (o for origins in definitions.origins.values() for o in origins):
        file, _, line = origin.rpartition(":")
        assert file == FILE
        assert 1 <= int(line) <= lines


@SETTINGS
@given(text=st.text(max_size=300))
def test_any_text_is_loaded_or_reported_never_raised(text: str) -> None:
    check(text)


@SETTINGS
@given(lines=st.lists(TRICKY_LINES | st.text(max_size=20), max_size=12))
def test_yaml_corners_are_loaded_or_reported_never_raised(lines: list[str]) -> None:
    check("\n".join(lines))


@SETTINGS
@given(document=DOCUMENTS)
def test_any_yaml_document_is_loaded_or_reported_never_raised(document: Any) -> None:
    check(yaml.safe_dump(document))
    check(yaml.safe_dump(document, default_flow_style=True))


def _flow(document: Any) -> str:
    return yaml.safe_dump(document, default_flow_style=True, width=10**6).strip()


@SETTINGS
@given(
    base=st.dictionaries(KEYS, DOCUMENTS, min_size=1, max_size=4),
    more=st.dictionaries(KEYS, DOCUMENTS, max_size=3),
    own=st.dictionaries(KEYS, DOCUMENTS, max_size=3),
)
def test_merge_keys_anywhere_are_loaded_or_reported_never_raised(
    base: dict[str, Any], more: dict[str, Any], own: dict[str, Any]
) -> None:
    anchors = f"base: &a {_flow(base)}\nmore: &m {_flow(more)}\n"
    rest = "".join(f"{_flow(key)}: {_flow(value)}\n" for key, value in own.items())
    check(f"{anchors}<<: *a\n{rest}")
    check(f"{anchors}<<: [*a, *m]\n{rest}")
    check(f"{anchors}automations:\n  - <<: *a\n    name: x\nslas:\n  - <<: *m\n")


@SETTINGS
@given(depth=st.sampled_from([1, 10, 100, 400, 1000, 3000]), opener=st.sampled_from("[{"))
def test_deep_nesting_is_reported_never_raised(depth: int, opener: str) -> None:
    check("automations: " + (opener if opener == "[" else "{a: ") * depth)


NAMES = st.text(st.characters(codec="ascii", categories=["L", "N"]), min_size=1, max_size=12)


@SETTINGS
@given(
    names=st.lists(NAMES, min_size=1, max_size=5, unique=True),
    expect=st.lists(st.sampled_from(["a.b", "prefect.flow-run.*", "x"]), max_size=3),
    within=st.sampled_from([0, 60, "10m", "2h", "7d"]),
)
def test_valid_automations_load_with_their_lines(
    names: list[str], expect: list[str], within: object
) -> None:
    automations = [
        {
            "name": name,
            "trigger": {"type": "event", "expect": expect, "within": within},
            "actions": [{"type": "do-nothing"}],
        }
        for name in names
    ]
    text = yaml.safe_dump({"automations": automations}, sort_keys=False)
    loaded = load_text(text, FILE)
    assert loaded.ok, loaded.errors
    assert [a.name for a in loaded.automations] == names
    lines = text.splitlines()
    for origin, name in zip(loaded.origins["automations"], names, strict=True):
        line = int(origin.rpartition(":")[2])
        assert lines[line - 1] == f"- name: {yaml.safe_dump(name).splitlines()[0]}", origin


def test_merge_keys_and_deep_nesting_are_reported_not_raised() -> None:
    # Found by the properties above: a top-level merge key raised KeyError, and deep
    # nesting RecursionError.
    merged = load_text("x: &b {automations: [{name: a}]}\n<<: *b\n", FILE)
    assert [str(e) for e in merged.errors] == [
        "automations.yaml:1: x: is not a known section; use automations:, connections:, "
        "sources:, webhooks:, slas:, deployments:, silences: or inhibit:",
        "automations.yaml:1: 'trigger' is required",
    ]
    deep = load_text("[" * 5000, FILE)
    assert [str(e) for e in deep.errors] == [
        "automations.yaml: not valid YAML/JSON: nested too deeply"
    ]
