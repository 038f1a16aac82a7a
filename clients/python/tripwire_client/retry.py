"""When to send a request again: the retry loop every tripwire client drives.

Sans-I/O: `Retry` neither sends nor sleeps, so tripwire-client's background thread (urllib)
and the engine's blocking and asyncio clients (httpx) share it. Each posts and waits in its
own way:

    retry = Retry(retries=3)
    while True:
        answer = post(body)                  # an Answer, whatever the transport
        delay = retry.delay_after(answer)
        if delay is None:                    # final: answered for good, or no retries left
            break
        time.sleep(delay)                    # or `await asyncio.sleep(delay)`

Which answers are worth another try (RETRYABLE_STATUSES, or no answer) and how long to
wait (`retry_delay`: Retry-After, else jittered backoff) are in `tripwire_client.config`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tripwire_client.config import RETRYABLE_STATUSES, retry_delay

Backoff = Callable[[int, str | None], float]
"""Seconds to wait before retry `attempt` (0-based), given the answer's Retry-After."""


@dataclass(frozen=True)
class Answer:
    """What one attempt got back, whatever sent it."""

    status: int | None  # None: no answer (connection refused, timeout, reset)
    retry_after: str | None = None
    text: str = ""  # the body (perhaps cut short), or why there was no answer

    @property
    def retryable(self) -> bool:
        """Sending the same request again may be answered differently."""
        return self.status is None or self.status in RETRYABLE_STATUSES

    @property
    def reason(self) -> str:
        """The status, or why there was no answer: for messages."""
        return f"HTTP {self.status}" if self.status is not None else self.text


@dataclass
class Retry:
    """One request's retries: whether to send it again, and after how many seconds."""

    retries: int
    backoff: Backoff = retry_delay
    used: int = 0

    def delay_after(self, answer: Answer) -> float | None:
        """Seconds to wait before sending again; None when `answer` is final or none are left."""
        if not answer.retryable or self.used >= self.retries:
            return None
        delay = self.backoff(self.used, answer.retry_after)
        self.used += 1
        return delay
