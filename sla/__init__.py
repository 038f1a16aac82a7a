"""SLAs: deadlines, durations and freshness on restart-safe timers.

So far the timer machinery, which proactive triggers use; SLA definitions come next.
"""

from sla.timers import DueTimer

__all__ = ["DueTimer"]
