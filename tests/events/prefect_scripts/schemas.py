"""Run by tests/test_coming_from_prefect.py with the Prefect venv's Python.

Walks the installed Prefect package and prints, as one JSON object, every name a Prefect
user can write in an automation, a deployment trigger or a deployment SLA: the
automation's fields, each trigger type with its fields (and the metric query's), each
action type with its fields (the client's and the server's), each SLA type with its
fields, the variables an action's templates see, and what a deployment trigger adds to its
trigger. The test compares them with the "Coming from Prefect" page, so a field
Prefect adds shows up as a missing row.
"""

from __future__ import annotations

import ast
import inspect
import json
import textwrap
import typing
from typing import Any

from prefect._experimental.sla import objects as sla_objects
from prefect.events import actions as client_actions
from prefect.events.schemas import automations, deployment_triggers
from prefect.server.events import actions as server_actions


def model_classes(union: Any) -> list[Any]:
    """The pydantic classes of a (possibly annotated, nested) union."""
    found: list[Any] = []
    for arg in typing.get_args(union):
        if typing.get_origin(arg) is typing.Annotated:
            arg = typing.get_args(arg)[0]
        if typing.get_origin(arg) is typing.Union:
            found.extend(model_classes(arg))
        elif isinstance(arg, type):
            found.append(arg)
    return found


def fields(model: Any, *, without: tuple[str, ...] = ("type",)) -> list[str]:
    return [name for name in model.model_fields if name not in without]


def by_type(union: Any) -> dict[str, list[str]]:
    return {
        str(model.model_fields["type"].default): fields(model) for model in model_classes(union)
    }


def function_tree(function: Any) -> ast.AST:
    return ast.parse(textwrap.dedent(inspect.getsource(function)))


def template_variables() -> list[str]:
    """The keys of the server's template context, and the Prefect objects (and workspace
    variables) it reads when a template names them."""
    names: set[str] = set()
    context = function_tree(server_actions.JinjaTemplateAction._template_context)
    for node in ast.walk(context):
        if isinstance(node, ast.Dict):
            names.update(str(k.value) for k in node.keys if isinstance(k, ast.Constant))
    objects = function_tree(server_actions.JinjaTemplateAction._relevant_native_objects)
    for node in ast.walk(objects):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Set):
            names.update(str(e.value) for e in node.value.elts if isinstance(e, ast.Constant))
    return sorted(names)


def main() -> None:
    actions = by_type(client_actions.ActionTypes)
    for kind, names in by_type(server_actions.ServerActionTypes).items():
        actions.setdefault(kind, names)
    schemas = {
        "automation_fields": fields(automations.AutomationCore, without=()),
        "triggers": by_type(automations.TriggerTypes),
        "metric_query": fields(automations.MetricTriggerQuery, without=()),
        "actions": actions,
        "slas": {
            model.__name__: fields(model, without=())
            for model in model_classes(sla_objects.SlaTypes)
        },
        "template_variables": template_variables(),
        # What a prefect.yaml deployment trigger adds to its trigger's fields.
        "deployment_trigger_fields": fields(deployment_triggers.BaseDeploymentTrigger, without=()),
    }
    print(json.dumps(schemas))


if __name__ == "__main__":
    main()
