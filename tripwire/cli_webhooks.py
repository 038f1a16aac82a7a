"""`tripwire webhooks ls|rejected`, and applying webhooks for `tripwire apply`."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

import typer

from events.webhooks.model import WebhookDefinition
from tripwire.cli_support import ApiOption, call, change_line

webhooks_app = typer.Typer(
    help="List webhooks and the requests they refused.", no_args_is_help=True
)


def apply_webhooks(
    api: str | None, webhooks: Sequence[WebhookDefinition], params: dict[str, str], dry_run: bool
) -> None:
    """POST the webhooks to /api/webhooks/apply and print one line per change."""
    body = {"webhooks": [w.model_dump(mode="json") for w in webhooks]}
    for change in call(api, "POST", "/api/webhooks/apply", json=body, params=params).json():
        typer.echo(change_line(change["change"], f"webhook {change['slug']}", dry_run))


def _shape(webhook: dict[str, Any]) -> str:
    if webhook.get("template"):
        return "template"
    if webhook.get("mapping"):
        return "mapping"
    return "default"


@webhooks_app.command("ls")
def webhooks_ls(api: str = ApiOption) -> None:
    """Webhooks: slug, signature scheme, how requests become events, URL path."""
    found = call(api, "GET", "/api/webhooks").json()
    if not found:
        typer.echo("no webhooks yet; define them under webhooks: and `tripwire apply -f FILE`")
        return
    rows = [("SLUG", "SIGNATURE", "SHAPE", "URL")]
    for webhook in found:
        scheme = (webhook.get("signature") or {}).get("scheme", "none")
        rows.append((webhook["slug"], scheme, _shape(webhook), webhook["url"]))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        typer.echo("  ".join([*cells, row[-1]]))


@webhooks_app.command("rejected")
def webhooks_rejected(
    slug: str = typer.Argument(..., help="The webhook's slug."),
    limit: int = typer.Option(20, "--limit", "-n", min=1, max=1000, help="The newest this many."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line, with headers."),
    api: str = ApiOption,
) -> None:
    """Requests the webhook refused, newest first: when, answer, reason (secrets blanked)."""
    path = f"/api/webhooks/{quote(slug, safe='')}/rejected"
    found = call(api, "GET", path, params={"limit": limit}).json()
    if as_json:
        for item in found:
            typer.echo(json.dumps(item))
        return
    if not found:
        typer.echo(f"no refused requests kept for {slug}")
        return
    for item in found:
        received = item["received"].replace("T", " ")[:19]
        where = f"{item['field']}: " if item["field"] else ""
        typer.echo(f"{received}  {item['status']}  {item['method']}  {where}{item['reason']}")
