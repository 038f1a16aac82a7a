"""The retry loop every client drives, fed plain answers: no server, no waiting."""

from __future__ import annotations

import pytest

from tripwire_client.config import retry_delay
from tripwire_client.retry import Answer, Retry


@pytest.mark.parametrize("status", [202, 400, 401, 404, 413, 422, 500])
def test_an_answer_that_would_not_change_is_final(status: int) -> None:
    assert Retry(3).delay_after(Answer(status)) is None


def test_no_answer_and_busy_answers_are_retried_until_the_retries_are_spent() -> None:
    calls: list[tuple[int, str | None]] = []

    def backoff(attempt: int, retry_after: str | None) -> float:
        calls.append((attempt, retry_after))
        return 1.5

    retry = Retry(3, backoff)
    answers = [Answer(None, text="refused"), Answer(503), Answer(429, "7"), Answer(502)]
    assert [retry.delay_after(a) for a in answers] == [1.5, 1.5, 1.5, None]
    assert calls == [(0, None), (1, None), (2, "7")]


def test_no_retries_means_one_attempt() -> None:
    assert Retry(0).delay_after(Answer(503)) is None


def test_retry_after_is_followed_up_to_a_cap_else_the_backoff_doubles_with_jitter() -> None:
    assert retry_delay(0, "2") == 2.0
    assert retry_delay(0, "120") == 10.0
    assert 0.125 <= retry_delay(0, "soon") <= 0.25  # not seconds: the backoff decides
    assert 0.25 <= retry_delay(1) <= 0.5
    assert 5.0 <= retry_delay(10) <= 10.0


def test_the_reason_names_the_status_or_why_there_was_none() -> None:
    assert Answer(503).reason == "HTTP 503"
    assert Answer(None, text="connection refused").reason == "connection refused"
