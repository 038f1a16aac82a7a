"""Run by tests/actions/test_prefect_blocks.py with the Prefect venv's Python.

Saves blocks with Prefect's own block classes, as a Prefect user would, to the server at
PREFECT_API_URL, and prints `{"<name>": "<block document id>", ...}`.

argv[1]: a JSON list of {"class": "SlackWebhook", "name": "ops", "fields": {...}}; the
class is looked up in prefect.blocks.notifications, prefect.blocks.webhook and
prefect.blocks.system.
"""

from __future__ import annotations

import json
import sys

from prefect.blocks import notifications, system, webhook


def main() -> int:
    ids = {}
    for spec in json.loads(sys.argv[1]):
        module = next(m for m in (notifications, webhook, system) if hasattr(m, spec["class"]))
        block = getattr(module, spec["class"])(**spec["fields"])
        ids[spec["name"]] = str(block.save(spec["name"], overwrite=True))
    print(json.dumps(ids))
    return 0


if __name__ == "__main__":
    sys.exit(main())
