"""Triggers: automations, matching, the evaluator, trigger state and decision traces.

Empty until the triggers issue lands: the layout is fixed by DESIGN.md.
"""

__all__: list[str] = []
