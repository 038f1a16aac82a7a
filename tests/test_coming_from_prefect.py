"""The "Coming from Prefect" page against the installed Prefect package.

Every name Prefect has (automation fields, trigger types and fields, action types, SLA
types and fields, deployment trigger fields, template variables) must have a row on the
page saying what tripwire does with it, and every row marked same or more must be something
tripwire's models accept. A field Prefect adds, or one tripwire drops, fails here with the
row named.
"""

from __future__ import annotations

import json
import re
import subprocess
import typing
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from actions import prefect_objects
from actions.context import template_context
from actions.model import Action
from sla import prefect_slas, prefect_triggers
from tests.actions.conftest import request_for
from tests.support import require_venv
from triggers.automation import Automation
from triggers.model import Trigger

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "guides" / "coming-from-prefect.md"
SCRIPT = ROOT / "tests" / "events" / "prefect_scripts" / "schemas.py"
STATUSES = frozenset({"same", "more", "differs"})
CLOUD = "(Prefect Cloud)"  # rows for what Prefect Cloud has and the package does not
ROW = re.compile(r"^\|\s*`(?P<name>[^`]+)`(?P<cloud>\s*\(Prefect Cloud\))?\s*\|(?P<rest>.*)\|\s*$")


@dataclass(frozen=True)
class Row:
    name: str
    status: str
    how: str
    cloud_only: bool


@cache
def prefect_schemas() -> dict[str, Any]:
    venv = require_venv(".venv-prefect", "prefect")
    done = subprocess.run(
        [str(venv / "bin" / "python"), str(SCRIPT)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    schemas: dict[str, Any] = json.loads(done.stdout)
    return schemas


def page_tables(page: Path) -> dict[str, dict[str, Row]]:
    """The page's tables, by their section heading, as rows by name."""
    tables: dict[str, dict[str, Row]] = {}
    section = ""
    for line in page.read_text().splitlines():
        if line.startswith("## "):
            section = line.removeprefix("## ").strip()
            continue
        match = ROW.match(line)
        if match is None:
            continue
        status, _, how = (cell.strip() for cell in match["rest"].partition("|"))
        row = Row(match["name"], status, how.strip(" |"), match["cloud"] is not None)
        assert row.name not in tables.setdefault(section, {}), f"{section}: {row.name} twice"
        tables[section][row.name] = row
    return tables


def section(title: str, page: Path = PAGE) -> dict[str, Row]:
    tables = page_tables(page)
    assert title in tables, f"the page has no table under '## {title}'"
    return tables[title]


def members(union: Any) -> list[type[BaseModel]]:
    """The models of a discriminated union (Annotated[A | Annotated[B, Tag] ..., ...])."""
    inner = typing.get_args(union)[0]
    found = []
    for arg in typing.get_args(inner):
        if typing.get_origin(arg) is typing.Annotated:
            arg = typing.get_args(arg)[0]
        if isinstance(arg, type):
            found.append(arg)
    return found


def by_type(union: Any) -> dict[str, type[BaseModel]]:
    return {str(model.model_fields["type"].default): model for model in members(union)}


def accepted(model: type[BaseModel]) -> set[str]:
    """Field names and aliases the model reads."""
    names = set(model.model_fields)
    names.update(field.alias for field in model.model_fields.values() if field.alias)
    return names


def check_rows(title: str, prefect: Iterable[str], page: Path = PAGE) -> dict[str, Row]:
    """Every Prefect name has a row with a known status and, unless same, says how; every
    row is a Prefect name (or marked as Prefect Cloud's)."""
    rows = section(title, page)
    wanted = list(prefect)
    missing = [name for name in wanted if name not in rows]
    assert not missing, f"'## {title}' has no row for Prefect's {missing}"
    extra = [name for name, row in rows.items() if name not in wanted and not row.cloud_only]
    assert not extra, f"'## {title}' has rows Prefect does not have: {extra}"
    for row in rows.values():
        assert row.status in STATUSES, f"{title}: {row.name}: status {row.status!r}"
        if row.status != "same":
            assert row.how, f"{title}: {row.name} is {row.status} but does not say how"
    return rows


def supported(rows: dict[str, Row]) -> list[str]:
    return [name for name, row in rows.items() if row.status in ("same", "more")]


def test_the_page_lists_every_automation_field_and_tripwire_reads_them():
    rows = check_rows("Automation fields", prefect_schemas()["automation_fields"])
    unread = [name for name in rows if name not in accepted(Automation)]
    assert not unread, f"tripwire's automation model does not read {unread}"


def test_the_page_lists_every_trigger_type_and_field():
    triggers: dict[str, list[str]] = prefect_schemas()["triggers"]
    rows = check_rows("Trigger types", triggers)
    ours = by_type(Trigger)
    for kind in supported(rows):
        assert kind in ours, f"trigger type {kind} is marked {rows[kind].status} but not loaded"
        unread = set(triggers[kind]) - accepted(ours[kind])
        assert not unread, f"trigger type {kind}: tripwire does not read {sorted(unread)}"

    query = [f"metric.{name}" for name in prefect_schemas()["metric_query"]]
    fields = dict.fromkeys(name for names in triggers.values() for name in names)
    check_rows("Trigger fields", [*fields, *query])


def test_the_page_lists_every_action_type_and_tripwire_reads_its_fields():
    actions: dict[str, list[str]] = prefect_schemas()["actions"]
    rows = check_rows("Action types", actions)
    ours = by_type(Action)
    for kind in rows:
        # Every row, differs too: a Prefect file with that action must load.
        assert kind in ours, f"action type {kind} is on the page but tripwire does not load it"
    for kind in supported(rows):
        unread = set(actions.get(kind, ())) - accepted(ours[kind])
        assert not unread, f"action {kind}: tripwire does not read {sorted(unread)}"


def test_the_page_lists_every_sla_type_and_field_and_tripwire_reads_them():
    slas: dict[str, list[str]] = prefect_schemas()["slas"]
    rows = check_rows("SLA types", slas)
    fields = dict.fromkeys(name for names in slas.values() for name in names)
    check_rows("SLA fields", fields)
    for kind in supported(rows):
        model = getattr(prefect_slas, kind, None)
        assert isinstance(model, type), f"SLA type {kind} is marked {rows[kind].status}"
        assert issubclass(model, BaseModel)
        unread = set(slas[kind]) - accepted(model)
        assert not unread, f"SLA type {kind}: tripwire does not read {sorted(unread)}"


def test_the_page_lists_every_deployment_trigger_field_and_tripwire_reads_them():
    rows = check_rows("Deployment trigger fields", prefect_schemas()["deployment_trigger_fields"])
    for model in members(prefect_triggers.DeploymentTrigger):
        unread = [name for name in supported(rows) if name not in accepted(model)]
        assert not unread, f"{model.__name__} does not read {unread}"


def test_the_page_lists_every_template_variable_and_templates_see_them():
    rows = check_rows("Template variables", prefect_schemas()["template_variables"])
    request = request_for({"type": "do-nothing"})
    seen = set(template_context(request)) | prefect_objects.NAMES
    unseen = [name for name in supported(rows) if name not in seen]
    assert not unseen, f"templates do not see {unseen}"


def test_the_checks_fail_on_a_bad_row(tmp_path: Path):
    # The checks above would pass on a page whose rows never parse.
    assert len(section("Action types")) >= 18
    page = tmp_path / "page.md"
    page.write_text(
        "## Action types\n\n| type | tripwire | how |\n|---|---|---|\n| `x` | maybe | |\n"
    )
    with pytest.raises(AssertionError, match="status 'maybe'"):
        check_rows("Action types", ["x"], page)
    with pytest.raises(AssertionError, match=r"no row for Prefect's \['y'\]"):
        check_rows("Action types", ["x", "y"], page)
