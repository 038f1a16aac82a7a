"""The compiled matchers give the same answers as the plain matching rules."""

from __future__ import annotations

import itertools
import random

from triggers.compiled import LabelsTest, ValueTest
from triggers.matching import resource_matches

VALUES = ["a", "ab", "b.c", "abc", "a*", "*c", "?b", "[ab]*", "!a", "!a*", "!*c", "!b.c"]
ACTUAL = [None, "", "a", "ab", "abc", "b.c", "bc", "a.b.c", "[ab]"]


def test_every_small_spec_agrees_with_the_rules() -> None:
    specs: list[str | list[str]] = [*VALUES]
    specs += [list(pair) for pair in itertools.combinations(VALUES, 2)]
    for spec in specs:
        test = ValueTest(spec)
        for actual in ACTUAL:
            resource = {} if actual is None else {"label": actual}
            expected = resource_matches(resource, {"label": spec})
            assert test(actual) is expected, (spec, actual)


def test_random_multi_label_specs_agree() -> None:
    rng = random.Random(3)
    for _ in range(500):
        spec: dict[str, str | list[str]] = {
            label: rng.choice(VALUES) if rng.random() < 0.5 else rng.sample(VALUES, 3)
            for label in rng.sample(["x", "y", "z"], rng.randint(1, 3))
        }
        resource = {
            label: value for label in ("x", "y", "z") if (value := rng.choice(ACTUAL)) is not None
        }
        assert LabelsTest(spec)(resource) is resource_matches(resource, spec), (spec, resource)


def test_keys_from_the_document_match_keys_from_the_model() -> None:
    from events.model import ReceivedEvent
    from tests.support import fixture_events
    from triggers.matching import bucket_key, document_labels
    from triggers.model import EventTrigger

    trigger = EventTrigger(
        for_each=[
            "prefect.resource.id",
            "prefect.resource.name",
            "related:flow:prefect.resource.name",
            "related:flow-run:prefect.resource.id",
            "related:nothing:x",
        ]
    )
    for document in fixture_events():
        event = ReceivedEvent.model_validate(document)
        assert document_labels(trigger.for_each, document) == bucket_key(trigger, event)
