"""Errors raised by the events package.

EventsError
├── InvalidEvent (ValueError)       -- input that is not a valid event; names the field
│   └── EventTooLarge               -- over the per-event size limit
├── TemplateError (ValueError)      -- a template that does not parse or render; names it
├── MissingSecret (LookupError)     -- secret('NAME') that is not set (events.secrets)
├── BusUnavailable                  -- NATS JetStream did not acknowledge; retry later
└── ApplyRefused (ValueError)       -- definitions `apply` will not store; names the field
    ├── DuplicateName               -- one name twice among the definitions applied at once
    └── ApplyConflict               -- clashes with what is stored, or with an apply meanwhile
"""

from __future__ import annotations


class EventsError(Exception):
    """Root of every error raised by the events package."""


class InvalidEvent(EventsError, ValueError):
    """The input is not a valid event; `field` names where, `message` says what to do."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message


class EventTooLarge(InvalidEvent):
    """An event is larger than the configured per-event limit."""


class TemplateError(EventsError, ValueError):
    """A template failed to parse or render; `field` says which one, `error` what failed."""

    def __init__(self, field: str, error: str) -> None:
        self.message = f"template {field}: {error}"
        super().__init__(self.message)
        self.field = field
        self.error = error


class BusUnavailable(EventsError):
    """The bus could not take the events; nothing was lost, send them again."""

    def __init__(self, message: str, *, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ApplyRefused(EventsError, ValueError):
    """Definitions that `apply` will not store as given (events.reconcile); `field` names
    where (`automations[1].name`), `message` says what to do. Nothing was changed."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.message = message


class DuplicateName(ApplyRefused):
    """Two definitions of one kind share a name (or slug): apply matches by it."""


class ApplyConflict(ApplyRefused):
    """The definitions clash with what is stored (an id another automation holds), or
    another apply stored one of them meanwhile; applying again usually settles it."""
