"""The SLA package's errors.

SLAError
 └── SLANotFound (also a LookupError)
"""

from __future__ import annotations


class SLAError(Exception):
    """Root of the SLA package's errors."""


class SLANotFound(SLAError, LookupError):
    """No SLA has that name or id."""
