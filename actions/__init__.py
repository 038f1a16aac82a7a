"""Actions: action models, executors, templating, retries and the action ledger.

Empty until the actions issue lands: the layout is fixed by DESIGN.md.
"""

__all__: list[str] = []
