"""Property tests (hypothesis): the event model, the definitions loader, the matchers."""

from __future__ import annotations

from hypothesis import HealthCheck, settings

# Reproducible in CI: the same examples on every run, nothing kept between runs.
SETTINGS = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
