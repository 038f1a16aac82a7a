"""Pages from Jinja2 templates with autoescaping on: everything an event carries is
written by outsiders, so no value reaches the page unescaped."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import orjson
import yaml
from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from pydantic import BaseModel

from events import clock
from tripwire import __version__
from tripwire.ui.access import Sessions, Visitor
from tripwire.ui.words import ago, duration

# One word per state, and the CSS class that colours it everywhere.
STATES = {
    "ok": "ok",
    "succeeded": "ok",
    "fired": "fired",
    "resolved": "ok",
    "recovered": "ok",
    "met": "ok",
    "at-risk": "at-risk",
    "retrying": "at-risk",
    "running": "muted",
    "pending": "muted",
    "missed": "missed",
    "failed": "failed",
    "paused": "paused",
    "connected": "ok",
}


def when(moment: datetime | None) -> str:
    """A time as the dashboard prints it: UTC, to the second."""
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "—"


def pretty_json(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode()


def plural(count: int, noun: str) -> str:
    """ "1 key", "3 keys"."""
    return f"{count:,} {noun}" if count == 1 else f"{count:,} {noun}s"


def definition_yaml(model: BaseModel) -> str:
    """A definition as YAML to read: fields left at their defaults and ids left out, but
    every `type` kept, since it says what a trigger or an action is."""
    return yaml.safe_dump(
        _readable(
            model.model_dump(mode="json"), model.model_dump(mode="json", exclude_defaults=True)
        ),
        sort_keys=False,
        allow_unicode=True,
    )


def _readable(full: Any, trimmed: Any) -> Any:
    if isinstance(full, dict) and isinstance(trimmed, dict):
        kept = {k: _readable(full[k], v) for k, v in trimmed.items() if k != "id"}
        if "type" in full and "type" not in kept:
            kept = {"type": full["type"], **kept}
        return kept
    if isinstance(full, list) and isinstance(trimmed, list) and len(full) == len(trimmed):
        return [_readable(f, t) for f, t in zip(full, trimmed, strict=True)]
    return trimmed


def state_class(state: str) -> str:
    return "state-" + STATES.get(state, "muted")


def query(params: dict[str, Any], **changes: Any) -> str:
    """A query string with `changes` applied (None drops a parameter)."""
    merged = {**params, **changes}
    return urlencode({k: v for k, v in merged.items() if v not in (None, "")})


def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("tripwire.ui", "templates"),
        autoescape=select_autoescape(default=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        when=when,
        ago=lambda moment: ago(moment, clock.now()),
        duration=duration,
        pretty_json=pretty_json,
        state=state_class,
        plural=plural,
    )
    env.globals.update(version=__version__, query=query)
    return env


class Pages:
    """Renders one template for one request, with what every page needs."""

    def __init__(self, sessions: Sessions) -> None:
        self.sessions = sessions
        self.env = environment()

    def render(
        self,
        request: Request,
        visitor: Visitor,
        template: str,
        status: int = 200,
        **context: Any,
    ) -> HTMLResponse:
        html = self.env.get_template(template).render(
            request=request,
            path=request.url.path,
            visitor=visitor,
            auth_enabled=self.sessions.auth.enabled,
            csrf=self.sessions.csrf_token(visitor),
            now=clock.now(),
            **context,
        )
        return HTMLResponse(html, status, headers={"Cache-Control": "no-store"})
