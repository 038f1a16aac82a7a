"""Fuzz the HTTP API from its own OpenAPI schema (schemathesis) against a real engine.

Every operation gets data that fits the schema (positive) and data that does not
(negative). Whatever arrives, the engine must answer without a 5xx and within a bounded
time: bad input is a 4xx naming the field, never a crash or a hang.

Nothing is excluded. The destructive operations (DELETE, `apply` with `prune`) only touch
the throwaway engine this test starts, and the webhook receiver and metrics are as open to
bad input as the rest.
"""

from __future__ import annotations

import asyncio
import os
import time
import traceback
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import max_response_time, not_a_server_error
from schemathesis.core.failures import Failure
from schemathesis.core.result import Ok

from tests.support import StartEngine

# Examples per operation and generation mode; raise for a longer hunt, e.g.
# TRIPWIRE_FUZZ_EXAMPLES=500 .venv/bin/pytest tests/fuzz
EXAMPLES = int(os.environ.get("TRIPWIRE_FUZZ_EXAMPLES", "25"))
RESPONSE_LIMIT = 5.0  # seconds: far above any healthy answer on a shared 2-CPU machine
REQUEST_TIMEOUT = 15.0  # a hang fails the example instead of the whole suite


def fuzz(raw_schema: dict[str, object], base_url: str) -> tuple[list[str], int]:
    """Run every operation of the schema; the failures found, and how many requests ran."""
    config = schemathesis.Config()
    config.projects.default.checks.max_response_time.limit = RESPONSE_LIMIT
    schema = schemathesis.openapi.from_dict(raw_schema, config=config)
    failures: list[str] = []
    sent = 0
    session = requests.Session()
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result  # the schema FastAPI serves is well formed
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            before, began = sent, time.monotonic()

            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                derandomize=True,  # the same examples on every run and in CI
                database=None,
                phases=[Phase.explicit, Phase.generate, Phase.shrink],
                suppress_health_check=list(HealthCheck),
                report_multiple_bugs=False,
            )
            @given(case=operation.as_strategy(generation_mode=mode))
            def check(case: schemathesis.Case[Any]) -> None:
                nonlocal sent
                sent += 1
                started = time.monotonic()
                try:
                    response = case.call(
                        base_url=base_url, session=session, timeout=REQUEST_TIMEOUT
                    )
                except requests.Timeout as exc:
                    took = time.monotonic() - started
                    raise AssertionError(f"no answer within {took:.1f} s (a hang)") from exc
                case.validate_response(
                    response,
                    checks=[not_a_server_error, max_response_time],
                    transport_kwargs={"base_url": base_url},
                )

            try:
                check()
            except Unsatisfiable:
                # No input breaks the schema here: no parameters, or only strings in the
                # path and query, which any text satisfies. The positive run covers it.
                assert mode is GenerationMode.NEGATIVE, operation.label
            except (Failure, BaseExceptionGroup, AssertionError) as exc:
                failures.append(f"{operation.label} [{mode.value}]: {exc}")
            except Exception:
                failures.append(f"{operation.label} [{mode.value}]: {traceback.format_exc()}")
            took = time.monotonic() - began
            print(f"{operation.label} [{mode.value}]: {sent - before} requests, {took:.1f} s")
    session.close()
    return failures, sent


@pytest.mark.slow
@pytest.mark.timeout(300)
async def test_no_operation_answers_5xx_or_hangs_on_any_input(
    database_url: str, start_engine: StartEngine
) -> None:
    # On SQLite and on PostgreSQL: each refuses different input (PostgreSQL: NUL in text).
    # database_url comes first so that the database outlives the engine at teardown.
    engine = await start_engine(database_url=database_url)
    async with engine.client() as http:
        raw = (await http.get("/openapi.json")).json()
    assert len(raw["paths"]) >= 20  # the schema lists the whole API, not a stub
    # The engine serves from this event loop: schemathesis's blocking client runs beside it.
    failures, sent = await asyncio.to_thread(fuzz, raw, engine.url)
    assert sent >= len(raw["paths"]) * 2
    assert not failures, "\n\n".join(failures)
