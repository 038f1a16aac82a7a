"""The compiled screens (triggers/compiled.py) and the candidate index (triggers/index.py)
give the same answers as the plain matching rules (triggers/matching.py), on random
labels, specs, globs and negations.

tests/triggers/test_compiled.py checks a fixed table of values; these draw values from an
alphabet rich in glob syntax (`*`, `?`, `[...]`, `[!...]`, `!`), and go further: whole
events against whole triggers (resource, related, `where`), and the index by event name.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from events.model import RESOURCE_ID, RESOURCE_ROLE, ReceivedEvent
from tests.properties import SETTINGS
from triggers.automation import Automation
from triggers.compiled import LabelsTest, Screens, ValueTest
from triggers.index import CandidateIndex, Watch
from triggers.matching import arms, covers, expects, resource_matches, where_holds
from triggers.model import EventTrigger

# Few letters, so values and patterns often meet; every glob metacharacter.
VALUE = st.text(st.sampled_from("ab.-*?[]!^\\"), max_size=6)
ACTUAL = st.none() | st.text(st.sampled_from("ab.-*?[]!^\\"), max_size=6)
SPEC = VALUE | st.lists(VALUE, max_size=4)
LABEL = st.sampled_from(["x", "y", "z", RESOURCE_ID])
LABEL_SPEC = st.dictionaries(LABEL, SPEC, max_size=3)


@SETTINGS
@given(spec=SPEC, actual=ACTUAL)
def test_a_compiled_value_test_agrees_with_the_rules(
    spec: str | list[str], actual: str | None
) -> None:
    resource = {} if actual is None else {"label": actual}
    assert ValueTest(spec)(actual) is resource_matches(resource, {"label": spec})


def resources(*required: str) -> st.SearchStrategy[dict[str, str]]:
    """Labels from the same alphabet, with the required ones set."""
    labels = st.dictionaries(LABEL, VALUE, max_size=4)
    return st.tuples(labels, st.fixed_dictionaries({r: VALUE for r in required})).map(
        lambda pair: {**pair[0], **{k: v or "r" for k, v in pair[1].items()}}
    )


@SETTINGS
@given(spec=LABEL_SPEC, resource=st.dictionaries(LABEL, VALUE, max_size=4))
def test_a_compiled_labels_test_agrees_with_the_rules(
    spec: dict[str, Any], resource: dict[str, str]
) -> None:
    assert LabelsTest(spec)(resource) is resource_matches(resource, spec)


WHERES = st.sampled_from(
    [
        None,
        "payload.rows > `3`",
        "payload.rows == `3`",
        "payload.name == 'a'",
        "contains(event, 'a')",
        "length(related) > `1`",
        "payload.rows",  # a string compared with a number is no match, not an error
        "resource.x == related[0].x",
    ]
)
EVENTS = st.builds(
    lambda name, resource, related, payload: {
        "event": name,
        "resource": resource,
        "related": related,
        "payload": payload,
    },
    VALUE.map(lambda v: v or "e"),
    resources(RESOURCE_ID),
    st.lists(resources(RESOURCE_ID, RESOURCE_ROLE), max_size=3),
    st.fixed_dictionaries(
        {},
        optional={"rows": st.integers(0, 5) | VALUE, "name": VALUE},
    ),
)
TRIGGERS = st.builds(
    lambda match, related, where: EventTrigger(match=match, match_related=related, where=where),
    LABEL_SPEC,
    st.lists(LABEL_SPEC, max_size=2),
    WHERES,
)


@SETTINGS
@given(triggers=st.lists(TRIGGERS, min_size=1, max_size=4), document=EVENTS)
def test_an_event_screen_agrees_with_the_rules_for_whole_triggers(
    triggers: list[EventTrigger], document: dict[str, Any]
) -> None:
    event = ReceivedEvent.model_validate(document)
    json_document = event.model_dump(mode="json")
    screens = Screens()
    compiled = [screens.compile(trigger) for trigger in triggers]  # specs shared by slot
    screen = screens.screen(json_document)
    for trigger, slots in zip(triggers, compiled, strict=True):
        assert screen.covers(slots) is covers(trigger, event), trigger
        assert screen.where(slots) is where_holds(trigger, json_document), trigger.where


NAMES = st.lists(VALUE.map(lambda v: v or "n"), max_size=3)


@SETTINGS
@given(
    specs=st.lists(st.tuples(NAMES, NAMES), min_size=1, max_size=6),
    names=st.lists(VALUE.map(lambda v: v or "n"), min_size=1, max_size=5),
)
def test_the_candidate_index_finds_exactly_the_triggers_a_name_concerns(
    specs: list[tuple[list[str], list[str]]], names: list[str]
) -> None:
    watches = []
    for i, (expect, after) in enumerate(specs):
        trigger = EventTrigger(expect=expect, after=after)
        automation = Automation(name=f"a{i}", trigger=trigger)
        watches.append(Watch(automation, trigger, None))
    index = CandidateIndex(watches)
    for name in names * 2:  # the second time from the cache
        found = index.watches(name)
        assert len(found) == len(set(found))  # each once
        wanted = {w for w in watches if expects(w.trigger, name) or arms(w.trigger, name)}
        assert set(found) == wanted, name
