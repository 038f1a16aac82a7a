"""`tripwire webhooks ls|rejected`: webhooks and the requests they refused."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import typer

from tripwire.cli.api import ApiOption, call
from tripwire.cli.output import table, when

webhooks_app = typer.Typer(
    help="List webhooks and the requests they refused.", no_args_is_help=True
)


def _shape(webhook: dict[str, Any]) -> str:
    if webhook.get("template"):
        return "template"
    if webhook.get("mapping"):
        return "mapping"
    return "default"


@webhooks_app.command("ls")
def webhooks_ls(api: str = ApiOption) -> None:
    """Webhooks: slug, signature scheme, how requests become events, URL path."""
    found = call(api, "GET", "/api/webhooks")
    if not found:
        typer.echo("no webhooks yet; define them under webhooks: and `tripwire apply -f FILE`")
        return
    table(
        ("SLUG", "SIGNATURE", "SHAPE", "URL"),
        (
            (
                w["slug"],
                (w.get("signature") or {}).get("scheme", "none"),
                _shape(w),
                w["url"],
            )
            for w in found
        ),
    )


@webhooks_app.command("rejected")
def webhooks_rejected(
    slug: str = typer.Argument(..., help="The webhook's slug."),
    limit: int = typer.Option(20, "--limit", "-n", min=1, max=1000, help="The newest this many."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line, with headers."),
    api: str = ApiOption,
) -> None:
    """Requests the webhook refused, newest first: when, answer, reason (secrets blanked)."""
    path = f"/api/webhooks/{quote(slug, safe='')}/rejected"
    found = call(api, "GET", path, params={"limit": limit})
    if as_json:
        for item in found:
            typer.echo(json.dumps(item))
        return
    if not found:
        typer.echo(f"no refused requests kept for {slug}")
        return
    for item in found:
        where = f"{item['field']}: " if item["field"] else ""
        typer.echo(
            f"{when(item['received'])}  {item['status']}  {item['method']}  {where}{item['reason']}"
        )
