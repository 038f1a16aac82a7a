"""Pages from Jinja2 templates with autoescaping on: everything an event carries is
written by outsiders, so no value reaches the page unescaped."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from enum import Enum
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

import orjson
import yaml
from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from pydantic import BaseModel

from events import clock
from tripwire import __version__
from tripwire.ui.access import Sessions, Visitor
from tripwire.ui.words import ago, duration, duration_text, label_noun

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
    "none": "none",
    "firing": "missed",  # an alert: open, nobody on it yet
    "acknowledged": "at-risk",  # open, someone is on it
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
    """A definition as YAML to read, close to how it was written: fields left at their
    defaults and ids left out, `type` or `kind` right after the name, durations as `10m`,
    templates in double quotes."""
    return yaml.dump(
        _readable(model), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=10_000
    )


DISCRIMINATORS = ("type", "kind")
LEADING = ("name", "description", *DISCRIMINATORS)
TRAILING = (
    "warn_before",
    "actions",
    "actions_on_trigger",
    "actions_on_resolve",
)  # after what they act on


def _readable(value: Any) -> Any:
    if isinstance(value, BaseModel):
        shown: dict[str, Any] = {}
        fields = type(value).model_fields
        for name, field in fields.items():
            current = getattr(value, name)
            if name == "id" or (
                name not in DISCRIMINATORS
                and current == field.get_default(call_default_factory=True)
            ):
                continue
            shown[field.alias or name] = _readable(current)
        lead = {k: shown.pop(k) for k in LEADING if k in shown}
        trail = {k: shown.pop(k) for k in TRAILING if k in shown}
        return {**lead, **shown, **trail}
    if isinstance(value, timedelta):
        return duration_text(value)
    if isinstance(value, list | tuple):
        return [_readable(item) for item in value]
    if isinstance(value, dict):
        return {str(k): _readable(v) for k, v in value.items()}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime | date | UUID):
        return str(value)
    return value


class _Dumper(yaml.SafeDumper):
    """Strings with quotes or templates in double quotes, as people write them."""


def _string(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = '"' if ("'" in value or "{{" in value) and "\n" not in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _string)


def label_text(value: str | list[str]) -> str:
    """A label's value as one line: a list (such as tags) joined by commas."""
    return ", ".join(value) if isinstance(value, list) else value


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
        label_text=label_text,
        label_noun=label_noun,
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
