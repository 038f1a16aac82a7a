"""Answers that name every field at fault, as written in the request body
(`trigger.within: must not be negative`), for routes that validate a JSON body, and for
definitions `apply` refused."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

from events.api import json_response, problem
from events.errors import ApplyConflict, ApplyRefused


def _field(loc: Sequence[Any], body: Any) -> tuple[str, Any]:
    """The field path as written in the request (union tags left out), and its value."""
    where, *rest = loc or ("body",)
    if where != "body":
        return ".".join(str(p) for p in rest), None
    path, node = "", body
    for part in rest:
        if isinstance(node, dict) and part in node:
            node = node[part]
            path += f".{part}"
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
            path += f"[{part}]"
        # anything else is a tag pydantic adds for a union, or a missing key
    return path.lstrip("."), node


def _message(error: dict[str, Any], value: Any) -> str:
    kind = error["type"]
    if kind == "json_invalid":
        return f"the body is not valid JSON ({error.get('ctx', {}).get('error', 'cannot parse')})"
    if kind == "missing":
        return (
            f"'{error['loc'][-1]}' is required"
            if len(error["loc"]) > 1
            else "a JSON body is required"
        )
    if kind == "extra_forbidden":
        return "is not a known field (check the spelling)"
    if isinstance(value, bytes | bytearray):
        return "the body must be JSON, sent with content-type: application/json"
    return str(error["msg"]).removeprefix("Value error, ")


def validation_problem(errors: Sequence[Any], body: Any) -> Response:
    """A 422 naming every field at fault (`trigger.within: must not be negative`)."""
    found: list[dict[str, str]] = []
    for error in errors:
        path, value = _field(error["loc"], body)
        found.append({"field": path, "message": _message(error, value)})
    detail = "; ".join(
        f"{e['field']}: {e['message']}" if e["field"] else e["message"] for e in found
    )
    data: dict[str, Any] = {"detail": detail, "errors": found}
    if found and found[0]["field"]:
        data["field"] = found[0]["field"]
    return json_response(data, 422)


def refused(exc: ApplyRefused) -> Response:
    """The answer to definitions that `apply` refused, naming the field: 409 when they
    clash with what is stored, else 422."""
    return problem(409 if isinstance(exc, ApplyConflict) else 422, exc.message, exc.field)


class ReadableErrors(APIRoute):
    """FastAPI's route, with validation errors answered as one readable problem."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                return validation_problem(exc.errors(), exc.body)

        return handle
