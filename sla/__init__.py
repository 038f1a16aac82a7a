"""SLAs: deadlines, durations and freshness on restart-safe timers.

Empty until the SLA issue lands: the layout is fixed by DESIGN.md.
"""

__all__: list[str] = []
