"""Jinja2 templates in a sandbox, with Prefect's context names.

A string that is one expression and nothing else (`"{{ event.payload.rows }}"`) keeps
its JSON type when rendered as a value, so flow parameters stay numbers and lists.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from jinja2 import StrictUndefined
from jinja2 import TemplateError as JinjaError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from actions.errors import TemplateError
from actions.secrets import Secrets

ONE_EXPRESSION = re.compile(r"^\s*\{\{(?P<expr>(?:(?!\}\}|\{\{).)*)\}\}\s*$", re.DOTALL)


class Templates:
    """The sandboxed environment, built once per worker."""

    def __init__(self, secrets: Secrets) -> None:
        self.secrets = secrets
        self.env = ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
        self.env.globals["secret"] = secrets.get

    def check(self, source: str, field: str) -> None:
        """Parse only; a syntax error names the field and the line."""
        try:
            self.env.parse(source)
        except JinjaError as exc:
            raise TemplateError(field, _describe(exc)) from None

    def render(self, source: str, context: Mapping[str, Any], field: str) -> str:
        """Render to text."""
        if "{" not in source:
            return source
        try:
            return self.env.from_string(source).render(context)
        except TemplateError:
            raise
        except Exception as exc:
            raise TemplateError(field, _describe(exc)) from None

    def render_value(self, value: Any, context: Mapping[str, Any], field: str) -> Any:
        """Render every string inside dicts and lists; a lone expression keeps its type."""
        if isinstance(value, str):
            match = ONE_EXPRESSION.match(value)
            if match is None:
                return self.render(value, context, field)
            try:
                result = self.env.compile_expression(match["expr"], undefined_to_none=False)(
                    **context
                )
                if isinstance(result, StrictUndefined):
                    str(result)  # raises with Jinja's message
            except TemplateError:
                raise
            except Exception as exc:
                raise TemplateError(field, _describe(exc)) from None
            return result
        if isinstance(value, Mapping):
            return {k: self.render_value(v, context, f"{field}.{k}") for k, v in value.items()}
        if isinstance(value, list):
            return [self.render_value(v, context, f"{field}[{i}]") for i, v in enumerate(value)]
        return value


def _describe(exc: BaseException) -> str:
    line = getattr(exc, "lineno", None)
    where = f" (line {line})" if line else ""
    return f"{type(exc).__name__}: {exc}{where}"
