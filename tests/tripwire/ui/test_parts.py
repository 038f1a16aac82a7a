"""The dashboard's parts without a server: sessions, triggers in words, charts, filters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import SecretStr
from starlette.requests import Request

from events import clock
from triggers.automation import Automation
from tripwire.auth import Access, ApiAuth
from tripwire.settings import Settings
from tripwire.ui import readings
from tripwire.ui.access import COOKIE, SESSION_SECONDS, Sessions
from tripwire.ui.charts import Buckets, sparkline, stacked_bars, strip
from tripwire.ui.event_query import EventQuery, QueryError
from tripwire.ui.rendering import definition_yaml
from tripwire.ui.words import ago, duration, trigger_words

T0 = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)


def request_with(cookie: str = "", authorization: str = "") -> Request:
    headers = []
    if cookie:
        headers.append((b"cookie", f"{COOKIE}={cookie}".encode()))
    if authorization:
        headers.append((b"authorization", authorization.encode()))
    return Request({"type": "http", "method": "GET", "path": "/ui/", "headers": headers})


def sessions(**settings: Any) -> Sessions:
    return Sessions(ApiAuth(Settings(**settings)))


def test_a_session_says_what_its_key_allows_until_it_ends() -> None:
    board = sessions(api_key=SecretStr("w"), api_read_keys=[SecretStr("r")])
    with clock.frozen_clock(T0) as frozen:
        reader = board.issue(Access.read)
        assert board.visitor(request_with(reader)).access is Access.read
        assert board.visitor(request_with(board.issue(Access.write))).may_change
        frozen.advance(timedelta(seconds=SESSION_SECONDS + 1))
        assert board.visitor(request_with(reader)).access is Access.none


def test_a_tampered_or_foreign_session_is_nobody() -> None:
    board = sessions(api_key=SecretStr("w"), api_read_keys=[SecretStr("r")])
    _, expires, mac = board.issue(Access.read).split(".")
    assert board.visitor(request_with(f"2.{expires}.{mac}")).access is Access.none
    assert board.visitor(request_with("garbage")).access is Access.none
    # Another key, another signing key: a session of one deployment is void at another.
    other = sessions(api_key=SecretStr("other"))
    assert other.visitor(request_with(board.issue(Access.write))).access is Access.none
    # A tool may send its Authorization header instead.
    assert board.visitor(request_with(authorization="Bearer r")).access is Access.read


def test_csrf_tokens_belong_to_one_session() -> None:
    board = sessions(api_key=SecretStr("w"))
    mine = board.visitor(request_with(board.issue(Access.write)))
    with clock.frozen_clock(T0 + timedelta(seconds=5)):
        theirs = board.visitor(request_with(board.issue(Access.write)))
    token = board.csrf_token(mine)
    assert board.csrf_ok(mine, token)
    assert not board.csrf_ok(theirs, token)
    assert not board.csrf_ok(mine, None)
    open_board = sessions()
    everyone = open_board.visitor(request_with())
    assert everyone.may_change
    assert open_board.csrf_ok(everyone, open_board.csrf_token(everyone))
    assert not open_board.csrf_ok(everyone, token)


def test_read_keys_need_a_key_that_may_change() -> None:
    with pytest.raises(ValueError, match="TRIPWIRE_API_READ_KEYS needs TRIPWIRE_API_KEY"):
        Settings(api_read_keys=[SecretStr("r")])


def automation(trigger: dict[str, Any]) -> Automation:
    return Automation.model_validate({"name": "a", "trigger": trigger})


@pytest.mark.parametrize(
    ("trigger", "words"),
    [
        (
            {
                "expect": ["prefect.flow-run.Failed"],
                "threshold": 3,
                "within": 600,
                "for_each": ["related:flow:prefect.resource.name"],
            },
            "3 prefect.flow-run.Failed within 10m, per flow",
        ),
        ({"expect": ["dbt.model.refreshed"]}, "dbt.model.refreshed"),
        (
            {
                "posture": "Proactive",
                "after": ["prefect.flow-run.Running"],
                "expect": ["prefect.flow-run.Completed"],
                "within": 3600,
                "for_each": ["prefect.resource.id"],
            },
            "fewer than 1 prefect.flow-run.Completed within 1h after prefect.flow-run.Running, "
            "per resource",
        ),
        (
            {
                "type": "sequence",
                "within": 5400,
                "triggers": [
                    {"type": "event", "expect": ["a.started"]},
                    {"type": "event", "expect": ["a.done"]},
                ],
            },
            "in order: a.started; a.done, within 1h 30m",
        ),
        (
            {
                "type": "compound",
                "require": "any",
                "triggers": [{"type": "event", "expect": ["x"]}],
            },
            "any of: x",
        ),
    ],
)
def test_triggers_in_words(trigger: dict[str, Any], words: str) -> None:
    trigger.setdefault("type", "event")
    assert trigger_words(automation(trigger).trigger) == words


def test_times_in_words() -> None:
    assert duration(timedelta(seconds=90)) == "1m 30s"
    assert duration(timedelta(days=2, hours=3, minutes=4)) == "2d 3h"
    assert ago(T0 - timedelta(minutes=5), T0) == "5m ago"
    assert ago(T0 + timedelta(hours=2), T0) == "in 2h"
    assert ago(T0, T0) == "just now"
    assert ago(None, T0) == "never"


def test_charts_escape_names_and_scale_to_the_tallest_bucket() -> None:
    starts = [T0 + timedelta(minutes=15 * i) for i in range(4)]
    chart = stacked_bars(
        Buckets(starts, {'<b>"x"</b>': [0, 2, 4, 0], "other": [0, 0, 4, 0]}),
        label="l",
        link="/ui/events?event=a",
    )
    assert '<b>"x"</b>' not in chart
    assert "&lt;b&gt;&quot;x&quot;&lt;/b&gt;: 4 events" in chart
    assert 'height="138.00"' not in chart  # no single series fills the tallest bucket
    assert chart.count("<rect") == 3  # empty buckets draw nothing
    assert "/ui/events?event=a&amp;since=2026-12-06T09:15:00+00:00&amp;until=" in chart
    assert "<rect" not in sparkline([0, 0, 0], label="none")
    cells = strip([("missed", "<x>"), ("ok", "fine")], label="s")
    assert 'class="state-missed"' in cells
    assert "&lt;x&gt;" in cells


def test_event_filters_from_the_query_string() -> None:
    asked = EventQuery.from_params(
        {
            "event": "prefect.",
            "resource": "prefect.flow-run.*",
            "labels": "a=1, b=!2",
            "related": "prefect.flow.x",
            "role": "flow",
            "since": "2h",
        }
    )
    flt = asked.to_filter(now=T0)
    assert flt.occurred.since == T0 - timedelta(hours=2)
    assert flt.occurred.until == T0
    assert flt.event is not None
    assert flt.event.prefix == ["prefect."]
    assert flt.resource is not None
    assert flt.resource.id_prefix == ["prefect.flow-run."]
    assert flt.resource.labels == {"a": ["1"], "b": ["!2"]}
    assert flt.related is not None
    assert flt.related.id == ["prefect.flow.x"]
    assert asked.params()["since"] == "2h"
    assert "until" not in asked.params()
    with pytest.raises(QueryError) as bad:
        EventQuery(since="400d").to_filter(now=T0)
    assert bad.value.field == "since"


def test_definitions_read_without_defaults_but_with_their_types() -> None:
    shown = definition_yaml(
        Automation.model_validate(
            {
                "name": "a",
                "trigger": {"type": "event", "expect": ["x"]},
                "actions": [{"type": "do-nothing"}],
            }
        )
    )
    assert "type: event" in shown
    assert "type: do-nothing" in shown
    assert "threshold" not in shown
    assert "id:" not in shown


def test_what_happened_in_the_ranges_last_second_is_in_its_last_bar() -> None:
    # The database cuts seconds and minutes to whole ones: an event in the last second of
    # the range computes to one bar past the last.
    assert readings._slot(60, 60) == 59
    assert readings._slot(59, 60) == 59
    assert readings._slot(61, 60) is None
    assert readings._slot(-1, 60) is None
