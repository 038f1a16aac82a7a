"""The compiled screens (triggers/compiled.py) and the candidate index (triggers/index.py)
give the same answers as the plain matching rules (triggers/matching.py), on random
labels, specs, globs and negations.

tests/triggers/test_compiled.py checks a fixed table of values; these draw values from an
alphabet rich in glob syntax (`*`, `?`, `[...]`, `[!...]`, `!`), and go further: whole
events against whole triggers (resource, related, `where`), the index by event name and
by pinned resource id, and the decisions a batch records with the index against those
of a full scan.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from hypothesis import given
from hypothesis import strategies as st

from events.model import RESOURCE_ID, RESOURCE_ROLE, ReceivedEvent
from tests.properties import SETTINGS
from triggers.automation import Automation
from triggers.budget import Recorder, Sampling
from triggers.compiled import EventScreen, LabelsTest, Screens, ValueTest
from triggers.identity import automation_id
from triggers.index import CandidateIndex, Group, Watch
from triggers.matching import (
    arms,
    covers,
    expects,
    resource_matches,
    where_holds,
    why_not_covered,
)
from triggers.model import EventTrigger
from triggers.results import Decision, Outcome

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


# Resource ids from a small alphabet, so pins and events meet; globs and `!` included.
RESOURCE_IDS = st.sampled_from(["r1", "r2", "r3", "r*", "r?", "[r]1", "!r1", "!r*"])
RESOURCE_ID_SPEC = RESOURCE_IDS | st.lists(RESOURCE_IDS, max_size=3)
PINNING_SPEC = st.fixed_dictionaries(
    {}, optional={RESOURCE_ID: RESOURCE_ID_SPEC, "x": SPEC, "y": SPEC}
)
PINNING_TRIGGERS = st.builds(
    lambda match, related, where, expect, after: EventTrigger(
        match=match, match_related=related, where=where, expect=expect, after=after
    ),
    PINNING_SPEC,
    st.lists(LABEL_SPEC, max_size=1),
    WHERES,
    st.lists(st.sampled_from(["e1", "e2", "e*"]), max_size=2),
    st.lists(st.sampled_from(["e1", "e3"]), max_size=1),
)
PINNED_EVENTS = st.builds(
    lambda document, name, resource_id: {
        **document,
        "event": name,
        "resource": {**document["resource"], RESOURCE_ID: resource_id},
    },
    EVENTS,
    st.sampled_from(["e1", "e2", "e3"]),
    st.sampled_from(["r1", "r2", "r3", "r*", "[r]1", "s"]),
)


def pinning_watches(
    triggers: list[EventTrigger], enabled: list[bool], screens: Screens
) -> list[Watch]:
    """The triggers in three automations (so some share one's budget, as compound
    children do), compiled as the evaluator compiles them."""
    watches = []
    for i, trigger in enumerate(triggers):
        trigger = trigger.model_copy(update={"id": UUID(int=i + 1)})
        name = f"a{i % 3}"
        automation = Automation(
            id=automation_id(name), name=name, trigger=trigger, enabled=enabled[i % 3]
        )
        watches.append(Watch(automation, trigger, None, screens.compile(trigger)))
    return watches


def received(document: dict[str, Any]) -> dict[str, Any]:
    """The event's JSON document as the store hands it to the evaluator."""
    return ReceivedEvent.model_validate(document).model_dump(mode="json")


@SETTINGS
@given(
    triggers=st.lists(PINNING_TRIGGERS, min_size=1, max_size=8),
    documents=st.lists(PINNED_EVENTS, min_size=1, max_size=6),
)
def test_the_index_by_resource_id_leaves_out_only_triggers_that_cannot_match(
    triggers: list[EventTrigger], documents: list[dict[str, Any]]
) -> None:
    watches = pinning_watches(triggers, [True] * 3, Screens())
    index = CandidateIndex(watches)
    for document in documents:
        event = ReceivedEvent.model_validate(document)
        full = index.watches(event.event)
        found = index.watches(event.event, event.resource.id)
        assert [w for w in full if w in found] == found  # a part of the full list, in order
        for watch in full:
            if watch not in found:  # left out: its `match` fails on the event's resource
                assert not resource_matches(event.resource, watch.trigger.match), watch.trigger
        matching = [w for w in full if covers(w.trigger, event)]
        assert [w for w in found if covers(w.trigger, event)] == matching


def full_scan(
    index: CandidateIndex,
    screens: Screens,
    documents: list[dict[str, Any]],
    recorder: Recorder,
    per_batch: int,
) -> list[tuple[str, str, str, Any]]:
    """The batch screened against every candidate of each event's name, as before the
    index by resource id: the reference for what is found and recorded."""
    worded: dict[Group, int] = {}
    silent: set[Group] = set()
    found: list[tuple[str, str, str, Any]] = []
    for document in documents:
        groups = index.candidates(document["event"])
        if not groups:
            continue
        screen = EventScreen(screens, document)
        for group in groups:
            if not group.enabled:
                outcome = Outcome.paused
            elif not screen.covers(group.compiled):
                outcome = Outcome.unmatched
            elif not screen.where(group.compiled):
                outcome = Outcome.filtered
            else:
                found += [
                    (document["id"], w.id, screen.key(w.for_each), roles)
                    for w, roles in zip(group.watches, group.roles, strict=True)
                ]
                continue
            if group in silent:
                continue
            if worded.get(group, 0) >= per_batch or not any(
                recorder.records(w.automation_id, outcome) for w in group.watches
            ):
                silent.add(group)
                continue
            worded[group] = worded.get(group, 0) + 1
            trigger = group.watches[0].trigger
            if outcome is Outcome.paused:
                reason = "the automation is paused"
            elif outcome is Outcome.unmatched:
                reason = why_not_covered(trigger, screen.event) or "labels did not match"
            else:
                reason = f"where was false: {trigger.where}"
            for watch in group.watches:
                recorder.decide(
                    Decision(watch.automation_id, watch.id, outcome, reason, screen.event)
                )
    return found


def decided(decisions: list[Decision]) -> list[tuple[str, str, str, str, str]]:
    return [
        (d.automation_id, d.trigger_id, d.outcome.value, d.reason, str(d.event and d.event.id))
        for d in decisions
    ]


@SETTINGS
@given(
    triggers=st.lists(PINNING_TRIGGERS, min_size=1, max_size=8),
    enabled=st.lists(st.booleans(), min_size=3, max_size=3),
    documents=st.lists(PINNED_EVENTS, min_size=1, max_size=8),
    per_batch=st.integers(0, 3),
    per_second=st.none() | st.integers(0, 3),
)
def test_a_batch_finds_and_records_what_a_full_scan_does(
    triggers: list[EventTrigger],
    enabled: list[bool],
    documents: list[dict[str, Any]],
    per_batch: int,
    per_second: int | None,
) -> None:
    screens = Screens()
    index = CandidateIndex(pinning_watches(triggers, enabled, screens))
    batch = [received(d) for d in documents]

    decisions: list[Decision] = []
    recorder = Recorder(per_batch, decisions, Sampling(per_second))
    found = [
        (str(event.id), watch.id, key, roles)
        for document in batch
        for event, watch, key, roles in recorder.screen_event(index, screens, document)
    ]
    reference: list[Decision] = []
    wanted = full_scan(
        index, screens, batch, Recorder(per_batch, reference, Sampling(per_second)), per_batch
    )
    assert found == wanted
    assert decided(decisions) == decided(reference)
