"""Jinja2 templates rendered in the sandbox of `events.sandbox`, with `secret()`: actions
render Prefect's context names with them, webhooks turn requests into events.

A string that is one expression and nothing else (`"{{ event.payload.rows }}"`) keeps
its JSON type when rendered as a value, so flow parameters stay numbers and lists.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import lru_cache
from typing import Any, ClassVar, Final

from jinja2 import StrictUndefined, Template
from jinja2.environment import TemplateExpression
from jinja2.exceptions import TemplateSyntaxError

from events.errors import TemplateError
from events.sandbox import (
    BUDGET,
    MAX_CACHED,
    MAX_SECONDS,
    Budget,
    Guard,
    Limit,
    Sandbox,
    check_output,
)
from events.secrets import Secrets

ONE_EXPRESSION = re.compile(r"^\s*\{\{[-+]?(?P<expr>(?:(?!\}\}|\{\{).)*?)[-+]?\}\}\s*$", re.DOTALL)


# Parsing needs no secrets: one environment checks every action model's templates.
PARSER: Final = Sandbox()


@lru_cache(maxsize=MAX_CACHED)
def parse_error(source: str) -> str | None:
    """Why `source` is not a valid template (`does not parse: ... (line N)`), or None."""
    if "{" not in source:
        return None
    try:
        PARSER.parse(source)
    except TemplateSyntaxError as exc:
        return _describe(exc)
    return None


def parsed_template(value: str | None) -> str | None:
    """For validators: `value` as it is when it parses as a template (or is None); a
    ValueError saying why (`template does not parse: ... (line N)`) otherwise."""
    error = parse_error(value) if value is not None else None
    if error is not None:
        raise ValueError(f"template {error}")
    return value


class Templates:
    """The sandboxed environment with `secret()`, built once per process."""

    # What a failure raises; actions raise their own subclass (an ActionFailed).
    error: ClassVar[type[TemplateError]] = TemplateError

    def __init__(self, secrets: Secrets, *, max_seconds: float = MAX_SECONDS) -> None:
        self.secrets = secrets
        self.max_seconds = max_seconds
        self.env = Sandbox()
        self.env.globals["secret"] = secrets.get
        # The same action renders for every firing: compile each source once.
        self._template = lru_cache(maxsize=MAX_CACHED)(self._compile_template)
        self._expression = lru_cache(maxsize=MAX_CACHED)(self._compile_expression)

    def check(self, source: str, field: str) -> None:
        """Parse only; a syntax error names the field and the line."""
        error = parse_error(source)
        if error is not None:
            raise self.error(field, error)

    def render(self, source: str, context: Mapping[str, Any], field: str) -> str:
        """Render to text, at most MAX_OUTPUT characters."""
        if "{" not in source:
            return source
        with self._guarded(field):
            parts: list[str] = []
            size = 0
            for chunk in self._template(source).generate(context):
                size += len(chunk)
                check_output(size)
                parts.append(chunk)
            return "".join(parts)

    def render_value(self, value: Any, context: Mapping[str, Any], field: str) -> Any:
        """Render every string inside dicts and lists; a lone expression keeps its type."""
        if isinstance(value, str):
            match = ONE_EXPRESSION.match(value)
            if match is None:
                return self.render(value, context, field)
            with self._guarded(field, lines=False):
                result = self._expression(match["expr"])(**context)
                if isinstance(result, StrictUndefined):
                    str(result)  # raises with Jinja's message
                if isinstance(result, str):
                    check_output(len(result))
            return result
        if isinstance(value, Mapping):
            return {k: self.render_value(v, context, f"{field}.{k}") for k, v in value.items()}
        if isinstance(value, list):
            return [self.render_value(v, context, f"{field}[{i}]") for i, v in enumerate(value)]
        return value

    @contextmanager
    def _guarded(self, field: str, *, lines: bool = True) -> Iterator[None]:
        """A fresh budget; every failure becomes a TemplateError naming `field`."""
        token = BUDGET.set(Budget(seconds=self.max_seconds))
        try:
            yield
        except TemplateError:
            raise
        except Limit as exc:
            raise self.error(field, str(exc)) from None
        except Exception as exc:
            raise self.error(field, _describe(exc, lines=lines)) from None
        finally:
            BUDGET.reset(token)

    def _compile_template(self, source: str) -> Template:
        tree = self.env.parse(source)
        Guard().visit(tree)  # rewrites the nodes in place
        tree.set_environment(self.env)
        return self.env.from_string(tree)

    def _compile_expression(self, expression: str) -> TemplateExpression:
        return self.env.compile_expression(expression, undefined_to_none=False)


def _describe(exc: BaseException, *, lines: bool = True) -> str:
    if isinstance(exc, TemplateSyntaxError):
        return f"does not parse: {exc.message} (line {exc.lineno})"
    # Only rendered templates have their tracebacks rewritten to template lines.
    line = _template_line(exc) if lines else None
    where = f" (line {line})" if line else ""
    return f"{type(exc).__name__}: {exc}{where}"


def _template_line(exc: BaseException) -> int | None:
    """The template line an error was raised on: Jinja rewrites tracebacks to point there."""
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line
