"""Secrets for templates: `{{ secret('NAME') }}` reads a secrets file, then the environment
(never the engine's own TRIPWIRE_* settings).

Every value handed out is remembered, so `redact` can blank it from anything that is
logged, stored in the ledger or put on an event.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from events.errors import EventsError

MASK = "***"
MIN_REDACTED = 4  # shorter values would blank ordinary words
OWN_SETTINGS_PREFIX = "TRIPWIRE_"


class MissingSecret(EventsError, LookupError):
    """A template asked for a secret that is not set."""


def read_secrets_file(path: Path) -> dict[str, str]:
    """`NAME=value` lines; blank lines and `#` comments are skipped, quotes stripped."""
    values: dict[str, str] = {}
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.removeprefix("export ").partition("=")
        if not sep or not name.strip():
            raise ValueError(f"{path}:{number}: expected NAME=value")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[name.strip()] = value
    return values


class Secrets:
    """Named secrets: the secrets file first, then the environment."""

    def __init__(self, environ: Mapping[str, str] | None = None, file: Path | None = None) -> None:
        self._environ = os.environ if environ is None else environ
        self._file = read_secrets_file(file) if file is not None else {}
        self._seen: set[str] = {v for v in self._file.values() if len(v) >= MIN_REDACTED}

    def get(self, name: str) -> str:
        """The secret's value; MissingSecret says where it was looked for."""
        value = self._file.get(name)
        if value is None and name.upper().startswith(OWN_SETTINGS_PREFIX):
            # The engine's own settings (the database URL, API and Prefect keys) stay out
            # of reach of whoever may apply a template that sends them somewhere.
            raise MissingSecret(
                f"secret {name!r} is one of tripwire's own settings, which templates may "
                "not read from the environment; give the value another name, or put it in "
                "the secrets file (TRIPWIRE_SECRETS_FILE)"
            )
        if value is None:
            value = self._environ.get(name)
        if value is None:
            raise MissingSecret(
                f"secret {name!r} is not set: set the environment variable {name} where "
                "tripwire renders it (the worker for actions, the api for webhooks) or add "
                "it to the secrets file (TRIPWIRE_SECRETS_FILE)"
            )
        if len(value) >= MIN_REDACTED:
            self._seen.add(value)
        return value

    def remember(self, *values: str) -> None:
        """Redact these values too: secrets read from elsewhere (a Prefect block's)."""
        self._seen.update(v for v in values if len(v) >= MIN_REDACTED)

    def redact(self, text: str) -> str:
        """`text` with every secret value handed out so far replaced by ***."""
        for value in sorted(self._seen, key=len, reverse=True):
            if value in text:
                text = text.replace(value, MASK)
        return text
