"""`bench scale` at a tiny size on PostgreSQL, so that the benchmark cannot rot: one and
two workers over four partitions store every event and report their figures."""

from __future__ import annotations

import os

import pytest

from bench import scale

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(300)]


def test_one_and_two_workers_over_partitions_store_every_event() -> None:
    postgres = os.environ["TRIPWIRE_TEST_POSTGRES_URL"]  # the marker skips without it
    result = scale.run(
        events=1_000,
        batch=250,
        total=20,
        candidates=5,
        postgres=postgres,
        worker_counts=(1, 2),
        partitions=4,
    )
    one, two = result["workers"]["1"], result["workers"]["2"]
    for run in (one, two):
        assert run["stored"] == run["accepted"] == 1_000
        assert run["events_per_s"] > 0
        assert run["worker_cpu_seconds_per_1000"] > 0
        assert run["cores"]["worker1"], "no CPU affinity read"
    assert one["partitions_stored"] == {"worker1": [0, 1, 2, 3]}
    assert sorted(two["partitions_stored"].values()) == [[0, 2], [1, 3]]
    assert set(result["ratios"]) == {"1", "2"}
    assert result["ratios"]["1"] == 1.0
    assert result["cpu_per_event_change"]["1"] == 0.0
