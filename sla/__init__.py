"""SLAs: deadlines, durations and freshness on restart-safe timers.

The definitions (models, the deadline calendar), their windows and evaluation,
and the timer that proactive triggers share.
"""

from sla.calendar import Calendar
from sla.model import (
    SLA,
    DeadlineCalendar,
    DeadlineSLA,
    DurationSLA,
    FreshnessSLA,
    WarnBefore,
)
from sla.timers import DueTimer
from triggers.automation import Severity

__all__ = [  # noqa: RUF022  (plainly sorted, as tests/test_public_api.py checks)
    "Calendar",
    "DeadlineCalendar",
    "DeadlineSLA",
    "DueTimer",
    "DurationSLA",
    "FreshnessSLA",
    "SLA",
    "Severity",
    "WarnBefore",
]
