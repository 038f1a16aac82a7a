"""Where the engine is and how to authenticate: shared by every tripwire client."""

from __future__ import annotations

import base64
import os
import random
from typing import Final

DEFAULT_API_URL: Final = "http://127.0.0.1:4280"
# Statuses after which the same batch may succeed: busy, or the bus is briefly away.
RETRYABLE_STATUSES: Final = frozenset({429, 502, 503, 504})


def resolve_api_url(api_url: str | None = None) -> str:
    """The engine's address: the argument, else TRIPWIRE_API_URL or TRIPWIRE_URL, else local."""
    url = (
        api_url
        or os.environ.get("TRIPWIRE_API_URL")
        or os.environ.get("TRIPWIRE_URL")
        or DEFAULT_API_URL
    )
    return url.rstrip("/")


def api_auth_headers(api_key: str | None = None, auth_string: str | None = None) -> dict[str, str]:
    """Authorization header from TRIPWIRE_API_KEY (Bearer) or TRIPWIRE_API_AUTH_STRING (Basic)."""
    api_key = api_key or os.environ.get("TRIPWIRE_API_KEY")
    auth_string = auth_string or os.environ.get("TRIPWIRE_API_AUTH_STRING")
    if api_key:
        return {"Authorization": f"Bearer {api_key}"}
    if auth_string:
        return {"Authorization": "Basic " + base64.b64encode(auth_string.encode()).decode()}
    return {}


def retry_delay(attempt: int, retry_after: str | None = None, cap: float = 10.0) -> float:
    """Seconds to wait before retry `attempt` (0-based): Retry-After, else jittered backoff."""
    if retry_after is not None:
        try:
            return min(cap, max(0.0, float(retry_after)))
        except ValueError:
            pass
    return float(min(cap, 0.25 * 2**attempt) * (0.5 + random.random() / 2))


def flush_timeout(default: float) -> float:
    """Seconds a process may wait for its events before it ends: TRIPWIRE_FLUSH_TIMEOUT."""
    try:
        return float(os.environ.get("TRIPWIRE_FLUSH_TIMEOUT", default))
    except ValueError:
        return default
