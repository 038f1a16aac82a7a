"""Errors raised while running actions.

ActionsError
├── ActionFailed        -- permanent: do not retry (4xx, bad template, missing target)
│   ├── TemplateError   -- events' TemplateError: a template that does not parse or render
│   └── UnsafeURL       -- a private or loopback address, refused by the SSRF guard
└── ActionRetry         -- transient: try again after a backoff (or `retry_after`)
"""

from __future__ import annotations

import events.errors


class ActionsError(Exception):
    """Root of every error raised by the actions package."""

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code


class ActionFailed(ActionsError):
    """The action cannot succeed as written; retrying would not help."""


class TemplateError(events.errors.TemplateError, ActionFailed):
    """events' TemplateError as an ActionFailed: a template that does not render will not
    render on a retry either."""

    # ValueError's __init__ ends the chain before ActionsError's, which sets this.
    status_code: int | None = None


class UnsafeURL(ActionFailed):
    """The URL points at a private, loopback or link-local address."""


class ActionRetry(ActionsError):
    """A transient failure (timeout, 5xx, 429); `retry_after` overrides the backoff."""

    def __init__(
        self, message: str, *, status_code: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, status_code=status_code)
        self.retry_after = retry_after
