"""One request to the engine through the standard library (urllib), as an `Answer`; never
raises. The emitter's sender and the `tripwire` CLI both send this way."""

from __future__ import annotations

import urllib.error
import urllib.request

from tripwire_client.retry import Answer


def exchange(
    request: urllib.request.Request,
    timeout: float,
    *,
    read_answer: bool = True,
    error_bytes: int = -1,
) -> Answer:
    """Send `request`; the status, Retry-After and text of the answer, or no status and the
    reason when nothing answered. `read_answer=False` leaves a success's body unread;
    `error_bytes` caps how much of a refusal's body is kept (-1: all of it)."""
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return Answer(response.status, text=response.read().decode() if read_answer else "")
    except urllib.error.HTTPError as exc:
        with exc:
            text = exc.read(error_bytes).decode(errors="replace")
        return Answer(exc.code, exc.headers.get("Retry-After"), text)
    except (OSError, ValueError) as exc:  # URLError, timeouts, resets, a malformed URL
        return Answer(None, text=str(getattr(exc, "reason", exc)))
