"""Properties of the template sandbox: whatever a template says, rendering ends quickly with
a bounded result or a TemplateError, never another exception (the limits themselves are
tested one by one in tests/actions/test_templating.py)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from actions.errors import TemplateError
from actions.templating import Templates
from events.sandbox import MAX_OUTPUT
from events.secrets import Secrets
from tests.properties import SETTINGS

TEMPLATES = Templates(Secrets(environ={"TOKEN": "s3cr3t-value"}))
CONTEXT: dict[str, Any] = {"event": {"payload": {"rows": 3, "items": [1, [2, [3]]], "s": "ab"}}}

# Pieces of expressions: big numbers, widths, repetition, filters that build text, and
# the attribute escapes the sandbox blocks.
ATOMS = st.sampled_from(
    [
        "1",
        "10**9",
        "999999999",
        "'ab'",
        "'\\t'",
        "[1, [2, [3]]]",
        "event.payload",
        "event.payload.items",
        "event.payload.s",
        "range(10**6)",
        "secret('TOKEN')",
        "''.__class__",
        "cycler.__init__",
        "{}",
    ]
)
OPERATORS = st.sampled_from([" * ", " ** ", " ~ ", " + ", " % "])
FILTERS = st.sampled_from(
    [
        "",
        "|tojson",
        "|tojson(indent=999999999)",
        "|tojson(indent=2)",
        "|center(999999999)",
        "|indent(999999999)",
        "|list",
        "|join(',')",
        "|replace('', 'xx')",
        "|batch(999999999)|list",
        "|string",
        "|length",
        "|format(1)",
        "|wordwrap(1)",
        "|sum",
    ]
)
EXPRESSIONS = st.builds(
    lambda left, op, right, flt: f"({left}{op}{right}){flt}", ATOMS, OPERATORS, ATOMS, FILTERS
) | st.builds(lambda atom, flt: f"{atom}{flt}", ATOMS, FILTERS)
TEMPLATE_TEXT = st.lists(
    EXPRESSIONS.map(lambda e: "{{ " + e + " }}")
    | EXPRESSIONS.map(lambda e: "{% for i in " + e + " %}{{ i }}{% endfor %}")
    | st.just("{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}")
    | st.text(max_size=5),
    min_size=1,
    max_size=3,
).map("".join)


@SETTINGS
@given(template=TEMPLATE_TEXT)
def test_any_template_renders_bounded_or_fails_with_a_template_error(template: str) -> None:
    started = time.monotonic()
    refusal = ""
    try:
        result = TEMPLATES.render(template, CONTEXT, "text")
    except TemplateError as error:
        refusal = error.message
    else:
        assert len(str(result)) <= MAX_OUTPUT
    if refusal:
        assert refusal.startswith("template text")
        assert "s3cr3t-value" not in refusal
    assert time.monotonic() - started < 5  # the render limit is 1 s; 5 on a busy machine


@pytest.mark.parametrize(
    "template",
    ["{{ [1, [2]] | tojson(indent=999999999) }}", "{{ {'a': 1} | tojson(indent=10**9) }}"],
)
def test_a_huge_tojson_indent_is_refused_before_it_is_built(template: str) -> None:
    # json.dumps built 5 GB in C for two minutes before the size check saw the result.
    started = time.monotonic()
    with pytest.raises(TemplateError, match="the result of the tojson filter"):
        TEMPLATES.render(template, CONTEXT, "text")
    assert time.monotonic() - started < 1
