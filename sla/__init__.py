"""SLAs: deadlines, durations and freshness on restart-safe timers.

So far the definitions (models, loading, the deadline calendar) and the timer machinery,
which proactive triggers use; evaluation comes next.
"""

from sla.calendar import Calendar
from sla.loading import Definitions, load_paths, load_text
from sla.model import (
    SLA,
    DeadlineCalendar,
    DeadlineSLA,
    DurationSLA,
    FreshnessSLA,
    Severity,
    WarnBefore,
)
from sla.timers import DueTimer

__all__ = [  # noqa: RUF022  (plainly sorted, as tests/test_public_api.py checks)
    "Calendar",
    "DeadlineCalendar",
    "DeadlineSLA",
    "Definitions",
    "DueTimer",
    "DurationSLA",
    "FreshnessSLA",
    "SLA",
    "Severity",
    "WarnBefore",
    "load_paths",
    "load_text",
]
