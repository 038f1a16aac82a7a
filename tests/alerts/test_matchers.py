"""Label matchers: every operator, globs, tags, missing labels, the two YAML forms, and
the errors people will meet."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from alerts.matchers import (
    Labels,
    Matcher,
    MatcherList,
    NonEmptyMatchers,
    matchers_from_mapping,
    matches,
    parse_matcher,
)
from tests.properties import SETTINGS
from triggers.matching import resource_matches

ALERT: Labels = {
    "automation": "etl-nightly",
    "severity": "critical",
    "tags": ["etl", "warehouse"],
    "prefect.resource.name": "nightly-load",
}


class Silence(BaseModel):
    """Stands in for a definition that holds matchers."""

    match: NonEmptyMatchers


class Rule(BaseModel):
    match: MatcherList = []


def holds(text: str, labels: Labels = ALERT) -> bool:
    return parse_matcher(text).matches(labels)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("severity=critical", True),
        ("severity=info", False),
        ("severity!=info", True),
        ("severity!=critical", False),
        ("severity=~crit.*", True),
        ("severity=~crit", False),  # the whole value must match
        ("severity=~.*ritica", False),
        ("severity!~crit.*", False),
        ("severity!~info|warning", True),
    ],
)
def test_each_operator(text: str, expected: bool) -> None:
    assert holds(text) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("automation=etl-*", True),
        ("automation=etl-nightl?", True),
        ("automation=etl-[mn]ightly", True),
        ("automation=etl-[!n]ightly", False),
        ("automation=ETL-*", False),  # case-sensitive, as triggers are
        ("automation=etl", False),  # a glob matches the whole value too
        ("automation!=etl-*", False),
        ("prefect.resource.name!=nightly-*", False),
        ("prefect.resource.name!=daily-*", True),
    ],
)
def test_equals_takes_the_globs_triggers_take(text: str, expected: bool) -> None:
    assert holds(text) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tags=warehouse", True),  # any element
        ("tags=ware*", True),
        ("tags=staging", False),
        ("tags!=staging", True),  # no element is staging
        ("tags!=etl", False),  # one element is etl
        ("tags=~ware.*", True),
        ("tags!~e.*", False),  # etl matches
        ("tags!~x.*", True),
    ],
)
def test_a_list_label_matches_through_any_element(text: str, expected: bool) -> None:
    assert holds(text) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("env!=prod", True),
        ("env=prod", False),
        ("env=", True),  # missing reads as the empty string
        ("env=*", True),
        ("env=~.+", False),
        ("env!~.+", True),
        ("env=~", True),
    ],
)
def test_a_missing_label_is_the_empty_string(text: str, expected: bool) -> None:
    assert holds(text) is expected
    # and so is an empty list of tags
    assert holds(text, {"env": []}) is expected


def test_all_matchers_must_hold_and_none_hold_for_every_alert() -> None:
    both = [parse_matcher("automation=etl-*"), parse_matcher("severity=critical")]
    assert matches(both, ALERT)
    assert not matches([*both, parse_matcher("tags=staging")], ALERT)
    assert matches([], ALERT)
    assert matches([], {})


@pytest.mark.parametrize(
    ("text", "name", "op", "value"),
    [
        ("automation=etl-*", "automation", "=", "etl-*"),
        ("prefect.resource.name!=nightly-*", "prefect.resource.name", "!=", "nightly-*"),
        ("severity=~crit.*", "severity", "=~", "crit.*"),
        ("severity!~info", "severity", "!~", "info"),
        ("query=a=b", "query", "=", "a=b"),  # values may hold =
        ("query==b", "query", "=", "=b"),
        ("query!=a!=b", "query", "!=", "a!=b"),
        ("x=~a=~b", "x", "=~", "a=~b"),
        ("wh!o=x", "wh!o", "=", "x"),  # a lone ! is part of the name
        (" severity = critical ", "severity", "=", "critical"),
        ("env=", "env", "=", ""),
    ],
)
def test_parse_takes_the_first_and_longest_operator(
    text: str, name: str, op: Any, value: str
) -> None:
    assert parse_matcher(text) == Matcher(name, op, value)


def test_str_writes_the_matcher_as_parsed() -> None:
    for text in ["automation=etl-*", "a!=b", "s=~crit.*", "s!~x|y", "q=a=b", "env="]:
        assert str(parse_matcher(text)) == text


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("automation", "no operator"),
        ("", "no operator"),
        ("severity~crit", "no operator"),
        ("=critical", "no label name"),
        ("  !=x", "no label name"),
        ("=~x", "no label name"),
    ],
)
def test_parse_errors_name_the_text_and_the_shapes(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match="is not a matcher") as error:
        parse_matcher(text)
    message = str(error.value)
    assert repr(text) in message
    assert reason in message
    assert "label=value, label!=value, label=~regex or label!~regex" in message


def test_a_bad_regex_names_the_matcher_and_the_error() -> None:
    with pytest.raises(ValueError, match="bad regular expression") as error:
        parse_matcher("severity=~crit(")
    assert "matcher severity=~crit(" in str(error.value)
    assert "missing ), unterminated subpattern" in str(error.value)
    with pytest.raises(ValueError, match=r"matcher tags!~\[a- has a bad regular"):
        Matcher("tags", "!~", "[a-")


def test_a_regex_is_compiled_once() -> None:
    matcher = parse_matcher("severity=~crit.*")
    assert isinstance(matcher._pattern, re.Pattern)
    assert parse_matcher("severity=crit*")._pattern is None  # globs go to glob_matches


@pytest.mark.parametrize(
    ("name", "op"),
    [("", "="), (" a", "="), ("a=b", "="), ("a!~b", "="), ("a", "=="), ("a", "~")],
)
def test_matchers_that_could_not_be_written_back_are_refused(name: str, op: Any) -> None:
    with pytest.raises(ValueError, match=r"is not (a label name|an operator)"):
        Matcher(name, op, "x")


def test_the_mapping_form_reads_as_a_triggers_match() -> None:
    got = matchers_from_mapping(
        {"tags": ["warehouse", "lake", "!staging"], "automation": "etl-*", "env": "!prod"}
    )
    assert [str(m) for m in got] == [
        "tags=~warehouse|lake",
        "tags!=staging",
        "automation=etl-*",
        "env!=prod",
    ]
    assert matches(got, ALERT)
    assert not matches(got, {**ALERT, "tags": ["lake", "staging"]})
    assert not matches(got, {**ALERT, "tags": ["ocean"]})
    assert not matches(got, {**ALERT, "env": "prod"})


def test_a_list_of_globs_keeps_their_meaning() -> None:
    (anyof,) = matchers_from_mapping({"automation": ["etl-*", "x?z", "lit.eral"]})
    assert anyof.op == "=~"
    for value, expected in [
        ("etl-a", True),
        ("xyz", True),
        ("lit.eral", True),
        ("litxeral", False),  # a plain value's `.` is not a regex dot
        ("etl", False),
        ("prefix-etl-a", False),
    ]:
        assert anyof.matches({"automation": value}) is expected, value


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"tags": []}, "tags: the list of values is empty"),
        ({"code": 404}, "code: 404 is not a string or a list of strings"),
        ({"tags": ["a", 1]}, r"tags: \['a', 1\] is not a string"),
    ],
)
def test_the_mapping_form_refuses_what_is_not_strings(spec: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        matchers_from_mapping(spec)


def test_a_model_reads_both_forms_and_writes_strings() -> None:
    as_list = Silence.model_validate({"match": ["automation=etl-*", "severity!=info"]})
    as_mapping = Silence.model_validate({"match": {"automation": "etl-*", "severity": "!info"}})
    assert as_list == as_mapping
    assert as_list.match == [Matcher("automation", "=", "etl-*"), Matcher("severity", "!=", "info")]
    assert as_list.model_dump() == {"match": ["automation=etl-*", "severity!=info"]}
    assert as_list.model_dump_json() == '{"match":["automation=etl-*","severity!=info"]}'
    # What is written back reads back the same.
    assert Silence.model_validate_json(as_mapping.model_dump_json()) == as_mapping
    listed = Silence.model_validate({"match": {"tags": ["etl-*", "lake"]}})
    assert Silence.model_validate(listed.model_dump()) == listed
    assert Silence(match=[Matcher("a", "=", "b")]).match == [Matcher("a", "=", "b")]


def test_a_models_matchers_may_be_required_or_not() -> None:
    empties: list[Any] = [[], {}]
    for empty in empties:
        with pytest.raises(ValidationError) as error:
            Silence.model_validate({"match": empty})
        assert error.value.errors()[0]["loc"] == ("match",)
        assert error.value.errors()[0]["type"] == "too_short"
        assert Rule.model_validate({"match": empty}).match == []


@pytest.mark.parametrize(
    ("given", "loc", "message"),
    [
        (["severity=critical", "automation"], ("match", 1), "'automation' is not a matcher"),
        (["severity=~crit("], ("match", 0), "matcher severity=~crit( has a bad regular"),
        ({"tags": []}, ("match",), "tags: the list of values is empty"),
        ([3], ("match", 0), "3 is not a matcher"),
        ("severity=critical", ("match",), "valid list"),
    ],
)
def test_a_models_errors_name_the_matcher(given: Any, loc: tuple[Any, ...], message: str) -> None:
    with pytest.raises(ValidationError) as error:
        Silence.model_validate({"match": given})
    (problem,) = error.value.errors()
    assert problem["loc"] == loc
    assert message in problem["msg"]


def test_the_json_schema_takes_both_forms_and_gives_strings() -> None:
    taken = Silence.model_json_schema()["properties"]["match"]
    assert {branch["type"] for branch in taken["anyOf"]} == {"object", "array"}
    assert taken["minItems"] == 1
    given = Silence.model_json_schema(mode="serialization")["properties"]["match"]
    assert given["items"] == {"type": "string"}


# Properties, on values drawn from an alphabet rich in glob syntax so that values and
# patterns often meet.
VALUE = st.text(st.sampled_from("ab.-*?[]!^\\"), max_size=6)
PLAIN = st.text(st.sampled_from("ab.-"), max_size=4)
ACTUAL = VALUE | st.lists(VALUE, max_size=3)
OPERATOR = st.sampled_from(["=", "!=", "=~", "!~"])
NAME = st.sampled_from(["x", "prefect.resource.name", "related:flow:name", "a!b"])


def matcher_of(name: str, op: Any, value: str) -> Matcher:
    # Regex values are escaped plain text, so that every drawn one compiles.
    return Matcher(name, op, re.escape(value) if "~" in op else value)


@SETTINGS
@given(name=NAME, op=OPERATOR, value=VALUE)
def test_a_matcher_reads_back_from_its_string(name: str, op: str, value: str) -> None:
    matcher = matcher_of(name, op, value)
    assert parse_matcher(str(matcher)) == matcher


@SETTINGS
@given(op=st.sampled_from(["=", "=~"]), value=VALUE, actual=ACTUAL | st.none())
def test_a_negative_matcher_is_the_opposite_of_its_positive(
    op: str, value: str, actual: str | list[str] | None
) -> None:
    labels: Labels = {} if actual is None else {"x": actual}
    positive = matcher_of("x", op, value)
    negative = matcher_of("x", {"=": "!=", "=~": "!~"}[op], value)
    assert negative.matches(labels) is not positive.matches(labels)


@SETTINGS
@given(op=OPERATOR, value=VALUE, actual=st.lists(VALUE, min_size=1, max_size=3))
def test_a_list_label_is_its_elements_ored_or_anded(op: str, value: str, actual: list[str]) -> None:
    matcher = matcher_of("x", op, value)
    each = [matcher.matches({"x": element}) for element in actual]
    assert matcher.matches({"x": actual}) is (all(each) if op.startswith("!") else any(each))


@SETTINGS
@given(spec=VALUE | st.lists(VALUE, min_size=1, max_size=4), actual=VALUE)
def test_the_mapping_form_agrees_with_triggers_on_present_labels(
    spec: str | list[str], actual: str
) -> None:
    assert matches(matchers_from_mapping({"x": spec}), {"x": actual}) is resource_matches(
        {"x": actual}, {"x": spec}
    )


@SETTINGS
@given(spec=st.lists(PLAIN, min_size=2, max_size=4), actual=PLAIN)
def test_a_list_of_plain_values_is_any_of_them(spec: list[str], actual: str) -> None:
    assert matches(matchers_from_mapping({"x": spec}), {"x": actual}) is (actual in spec)
