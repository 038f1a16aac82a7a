"""Which sources an engine follows (`sources:` in files, TRIPWIRE_PREFECT_FOLLOW), and what
/api/health and the bus say while a source cannot be reached. The Prefect server itself is
in tests/events/test_follower.py."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from events.embedded import free_port
from events.filters import EventFilter, EventNameFilter
from events.sources import PrefectSource
from tests.support import StartEngine, eventually
from tripwire.cli import app
from tripwire.definitions import load_paths, load_text
from tripwire.engine import Role
from tripwire.following import followed_sources
from tripwire.settings import Settings

SOURCES = """\
sources:
  - type: prefect
    api_url: http://127.0.0.1:4200/api/
    events: ["prefect.flow-run.*", "prefect.deployment.triggered"]
  - type: prefect
    name: staging
    api_url: http://staging:4200/api
"""


def test_globs_become_server_prefixes_and_are_matched_exactly() -> None:
    source = PrefectSource(
        type="prefect",
        api_url="http://x/api",
        events=["prefect.flow-run.*", "prefect.flow-run.C*d", "prefect.work-pool.ready"],
    )
    assert source.server_prefixes() == [
        "prefect.flow-run.",
        "prefect.flow-run.C",
        "prefect.work-pool.ready",
    ]
    assert source.wants("prefect.flow-run.Completed")
    assert source.wants("prefect.work-pool.ready")
    assert not source.wants("prefect.work-pool.ready.not")
    assert not source.wants("prefect.task-run.Completed")
    anything = PrefectSource(type="prefect", api_url="http://x/api", events=["*.Failed"])
    assert anything.server_prefixes() == []  # no prefix to give the server
    assert anything.wants("prefect.flow-run.Failed")
    assert not anything.wants("x.Completed")
    everything = PrefectSource(type="prefect", api_url="http://x/api")
    assert everything.server_prefixes() == []
    assert everything.wants("any.thing")


def test_sources_load_from_definition_files() -> None:
    definitions = load_text(SOURCES, "s.yaml")
    assert definitions.ok, definitions.errors
    first, staging = definitions.sources
    assert (first.name, first.api_url) == ("prefect", "http://127.0.0.1:4200/api")
    assert first.events == ["prefect.flow-run.*", "prefect.deployment.triggered"]
    assert (staging.name, staging.events) == ("staging", [])
    assert definitions.origins["sources"] == ["s.yaml:2", "s.yaml:5"]


def test_source_errors_name_file_line_and_field(tmp_path: Path) -> None:
    bad = "sources:\n  - type: prefect\n    api_url: localhost:4200\n    event: [x]\n"
    errors = [str(e) for e in load_text(bad, "b.yaml").errors]
    assert errors == [
        "b.yaml:3: sources[0].api_url: must start with http:// or https:// "
        "(the Prefect API root, …/api)",
        "b.yaml:4: sources[0].event: is not a known field (check the spelling)",
    ]
    (tmp_path / "a.yaml").write_text(SOURCES)
    (tmp_path / "b.yaml").write_text("sources:\n  - {type: prefect, api_url: http://y/api}\n")
    errors = [str(e) for e in load_paths([tmp_path]).errors]
    assert errors == [
        f"{tmp_path / 'b.yaml'}:2: name: source 'prefect' is also defined at "
        f"{tmp_path / 'a.yaml'}:2; names must be unique"
    ]


def test_settings_follow_the_prefect_api_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIPWIRE_PREFECT_API_URL", "http://prefect:4200/api")
    monkeypatch.setenv("TRIPWIRE_PREFECT_FOLLOW", "true")
    monkeypatch.setenv("TRIPWIRE_PREFECT_FOLLOW_EVENTS", "prefect.flow-run.*, prefect.task-run.*")
    settings = Settings()
    [source] = followed_sources(settings, [])
    assert source.api_url == "http://prefect:4200/api"
    assert source.events == ["prefect.flow-run.*", "prefect.task-run.*"]
    # A file's source of the same name wins; others are followed beside it.
    from_file = load_text(SOURCES, "s.yaml").sources
    assert followed_sources(settings, from_file) == from_file
    monkeypatch.setenv("TRIPWIRE_PREFECT_FOLLOW", "false")
    assert followed_sources(Settings(), []) == []
    monkeypatch.delenv("TRIPWIRE_PREFECT_API_URL")
    monkeypatch.setenv("TRIPWIRE_PREFECT_FOLLOW", "true")
    with pytest.raises(ValidationError, match="TRIPWIRE_PREFECT_FOLLOW needs"):
        Settings()


async def test_an_unreachable_server_is_reported_in_health_and_announced_once(
    start_engine: StartEngine,
) -> None:
    url = f"http://127.0.0.1:{free_port()}/api"  # nothing listens there
    running = await start_engine(prefect_api_url=url, prefect_follow=True)
    [follower] = running.engine.followers
    follower.timing.first_retry = follower.timing.max_retry = 0.05

    async with running.client() as http:

        async def retried() -> httpx.Response | None:
            response = await http.get("/api/health")
            [source] = response.json()["sources"]
            return response if source["reconnects"] >= 3 else None

        response = await eventually(retried, 10, "three reconnects")
    [source] = response.json()["sources"]
    assert response.status_code == 200  # this process still ingests: not degraded
    assert source["name"] == "prefect"
    assert source["api_url"] == url
    assert source["state"] == "reconnecting"
    assert "Connect" in source["last_error"] or "Errno" in source["last_error"]
    assert source["forwarded"] == 0
    assert source["last_event"] is None

    announced = EventFilter(event=EventNameFilter(prefix=["tripwire.source."]))
    await running.wait_stored(1)
    page = await running.engine.store.read(announced, 10)
    [event] = page.events  # once, not once per attempt
    assert event.event == "tripwire.source.disconnected"
    assert event.resource.id == "tripwire.source.prefect"
    assert event.payload["api_url"] == url
    assert event.payload["reason"] == source["last_error"]


async def test_only_the_api_role_follows(start_engine: StartEngine) -> None:
    url = f"http://127.0.0.1:{free_port()}/api"
    worker = await start_engine(frozenset({Role.worker}), prefect_api_url=url, prefect_follow=True)
    assert worker.engine.followers == []


def test_validate_counts_sources_and_apply_says_they_are_read_at_start(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(SOURCES)
    result = CliRunner().invoke(app, ["validate", "-f", str(path)])
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "ok: 0 automations, 2 sources in 1 file(s)\n"
    # Nothing listens at this --api: the note comes before anything is sent.
    args = ["apply", "-f", str(path), "--api", f"http://127.0.0.1:{free_port()}"]
    result = CliRunner().invoke(app, args)
    assert "sources are not applied to a running engine" in result.stderr
