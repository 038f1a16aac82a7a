"""Writes the reference pages at docs build time (mkdocs-gen-files runs this script), from
the code itself: the definitions models, the settings model, the command tree, the OpenAPI
and AsyncAPI documents and the registered metrics."""

from __future__ import annotations

import sys
from pathlib import Path

import mkdocs_gen_files

sys.path.insert(0, str(Path(__file__).resolve().parent))

from reference_pages import bus, cli, definitions, http_api, metrics, settings

from tripwire.cli import app


def write(path: str, text: str) -> None:
    with mkdocs_gen_files.open(path, "w") as page:
        page.write(text)


openapi_document = http_api.openapi()
write("reference/definitions.md", definitions.page())
write("reference/settings.md", settings.page())
write("reference/cli.md", cli.page(app))
write("reference/http-api.md", http_api.page(openapi_document))
write("reference/openapi.json", http_api.document_json(openapi_document))
write("reference/metrics.md", metrics.page())
bus_document = bus.document()
write("reference/bus.md", bus.page(bus_document))
write("reference/asyncapi.json", http_api.document_json(bus_document))
