"""Definition files: every section the registry names loads with file:line: field errors;
Prefect's exports load unchanged; `validate` and `apply` read the same registry."""

from __future__ import annotations

import asyncio
from pathlib import Path

from typer.testing import CliRunner

from tests.sla.test_model import ISSUE
from tests.support import FIXTURES, Running
from triggers.model import CompoundTrigger, EventTrigger
from tripwire.cli import app
from tripwire.definitions import (
    APPLIED,
    SECTIONS,
    Definitions,
    DefinitionsBody,
    load_paths,
    load_text,
)

EXPORTS = ["etl-orders-keeps-failing", "compound-both-etls-done", "sales-refresh-expected-hourly"]


def test_prefect_exports_load_unchanged_from_yaml_and_json() -> None:
    for name in EXPORTS:
        from_yaml = load_paths([FIXTURES / f"{name}.yaml"])
        from_json = load_paths([FIXTURES / f"{name}.json"])
        assert from_yaml.ok, from_yaml.errors
        assert from_json.ok, from_json.errors
        assert from_yaml.automations == from_json.automations
        assert from_yaml.automations[0].name == name
    compound = load_paths([FIXTURES / "compound-both-etls-done.yaml"]).automations[0]
    assert isinstance(compound.trigger, CompoundTrigger)
    assert str(compound.id) == "d9a11655-ad30-4d56-8ce8-4fe2a6b34ea7"


def test_the_three_file_shapes() -> None:
    one = "name: a\ntrigger: {type: event}\n"
    many = "- name: a\n  trigger: {type: event}\n- name: b\n  trigger: {type: event}\n"
    section = "automations:\n  - name: a\n    trigger: {type: event, expect: [x.*], within: 2h}\n"
    assert [a.name for a in load_text(one, "one.yaml").automations] == ["a"]
    assert [a.name for a in load_text(many, "many.yaml").automations] == ["a", "b"]
    trigger = load_text(section, "s.yaml").automations[0].trigger
    assert isinstance(trigger, EventTrigger)
    assert trigger.within.total_seconds() == 7200
    assert load_text("", "empty.yaml").ok


BAD = """\
automations:
  - name: etl
    trigger:
      type: event
      expects: [x]
      where: "payload.rows <"
      within: -5
    actions:
      - type: pause-work-queue
      - type: send-slack
        text: hi
  - description: no name
    trigger: {type: event}
webhook: []
"""


def test_every_error_is_reported_with_file_line_and_field() -> None:
    errors = {(e.line, e.field): e.message for e in load_text(BAD, "bad.yaml").errors}
    assert "known field" in errors[(5, "trigger.expects")]
    assert "position 14" in errors[(6, "trigger.where")]
    assert "negative" in errors[(7, "trigger.within")]
    assert "work_queue_id or work_queue_name" in errors[(9, "actions[0]")]
    assert "'webhook_url' is required" in errors[(10, "actions[1]")]
    assert "'name' is required" in errors[(12, "")]
    assert "is not a known section" in errors[(14, "webhook")]
    assert len(errors) == 7


def test_syntax_errors_and_duplicates(tmp_path: Path) -> None:
    broken = load_text("automations: [\n  {name: x,", "broken.yaml")
    assert [(e.line, "not valid YAML" in e.message) for e in broken.errors] == [(2, True)]
    (tmp_path / "a.yaml").write_text("name: same\ntrigger: {type: event}\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.yml").write_text("- name: same\n  trigger: {type: event}\n")
    (tmp_path / "notes.txt").write_text("ignored")
    both = load_paths([tmp_path])
    assert len(both.files) == 2
    assert [e.field for e in both.errors] == ["name"]
    assert "a.yaml:1" in both.errors[0].message


def test_validate_command_exit_codes(tmp_path: Path) -> None:
    runner = CliRunner()
    good = runner.invoke(app, ["validate", "-f", str(FIXTURES / "etl-orders-keeps-failing.yaml")])
    assert good.exit_code == 0
    assert "ok: 1 automation in 1 file(s)" in good.stdout
    bad_file = tmp_path / "bad.yaml"
    bad_file.write_text(BAD)
    bad = runner.invoke(app, ["validate", "-f", str(bad_file)])
    assert bad.exit_code == 1
    assert f"{bad_file}:6: trigger.where:" in bad.stderr
    assert "7 problem(s)" in bad.stderr
    missing = runner.invoke(app, ["validate", "-f", str(tmp_path / "nope.yaml")])
    assert missing.exit_code == 1
    assert "no such file" in missing.stderr


CONNECTIONS = """\
connections:
  - name: staging
    type: prefect
    api_url: https://prefect-staging.internal/api/
    api_key: "{{ secret('STAGING_PREFECT_API_KEY') }}"
  - name: onprem.v2
    api_url: http://prefect:4200/api
    auth_string: "{{ secret('ONPREM_AUTH') }}"
automations:
  - name: reload-staging
    trigger: {type: event, expect: [orders.loaded]}
    actions:
      - {type: run-deployment, connection: staging, deployment: etl/prod}
"""


def test_connections_load_beside_automations_keeping_their_templates() -> None:
    loaded = load_text(CONNECTIONS, "c.yaml")
    assert loaded.ok, loaded.errors
    assert [a.name for a in loaded.automations] == ["reload-staging"]
    staging, onprem = loaded.connections
    assert staging.name == "staging"
    assert staging.api_url == "https://prefect-staging.internal/api"
    assert staging.api_key == "{{ secret('STAGING_PREFECT_API_KEY') }}"  # not rendered
    assert onprem.type == "prefect"
    assert onprem.auth_string == "{{ secret('ONPREM_AUTH') }}"
    assert loaded.origins["connections"] == ["c.yaml:2", "c.yaml:6"]
    only = load_text("connections:\n  - {name: a, api_url: 'http://p/api'}\n", "only.yaml")
    assert only.ok, only.errors
    assert (len(only.automations), len(only.connections)) == (0, 1)


BAD_CONNECTIONS = """\
connections:
  - name: bad name
    type: airflow
    api_url: ftp://prefect/api
    api_key: "{{ secret('K' }}"
    port: 4200
  - name: both
    api_url: http://prefect/api
    api_key: "{{ secret('K') }}"
    auth_string: "{{ secret('A') }}"
  - api_url: http://prefect/api
"""


def test_connection_errors_name_the_line_and_field() -> None:
    errors = {(e.line, e.field): e.message for e in load_text(BAD_CONNECTIONS, "c.yaml").errors}
    assert "letters, digits" in errors[(2, "connections[0].name")]
    assert "'prefect'" in errors[(3, "connections[0].type")]
    assert "http(s) URL" in errors[(4, "connections[0].api_url")]
    assert "template does not parse" in errors[(5, "connections[0].api_key")]
    assert "not a known field" in errors[(6, "connections[0].port")]
    assert (
        "api_key (Prefect Cloud) or auth_string (self-hosted), not both"
        in errors[(7, "connections[1]")]
    )
    assert "'name' is required" in errors[(11, "connections[2]")]
    assert len(errors) == 7
    shown = [str(e) for e in load_text("connections: {name: x}\n", "d.yaml").errors]
    assert shown == ["d.yaml:1: connections: must be a list"]


def test_a_connection_name_defined_twice_names_both_places(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("connections:\n  - {name: prod, api_url: 'http://a/api'}\n")
    (tmp_path / "b.yaml").write_text(
        "automations: []\nconnections:\n  - {name: prod, api_url: 'http://b/api'}\n"
    )
    both = load_paths([tmp_path])
    assert [str(e) for e in both.errors] == [
        f"{tmp_path / 'b.yaml'}:3: name: connection 'prod' is also defined at "
        f"{tmp_path / 'a.yaml'}:2; names must be unique"
    ]


def test_validate_counts_connections(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(CONNECTIONS)
    result = CliRunner().invoke(app, ["validate", "-f", str(path)])
    assert result.exit_code == 0, result.stderr
    assert "ok: 1 automation, 2 connections in 1 file(s)" in result.stdout


BAD_SLAS = """\
automations:
  - name: etl
    trigger: {type: event}
slas:
  - name: sales-by-9
    kind: deadline
    expect: [dbt.model.refreshed]
    deadline:
      cron: "0 9 * * MON-FRX"
      timezone: Europe/Berlinn
    grace: 5m
  - name: etl-in-2h
    kind: duration
    start: [flow.started]
    expect: []
    within: 2h
    actions:
      - type: send-slack
  - expect: [x]
"""


def test_sla_errors_name_the_line_and_field() -> None:
    loaded = load_text(BAD_SLAS, "s.yaml")
    errors = {(e.line, e.field): e.message for e in loaded.errors}
    assert 'Invalid weekday name "FRX"' in errors[(9, "slas[0].deadline.cron")]
    assert "not a known IANA time zone" in errors[(10, "slas[0].deadline.timezone")]
    assert errors[(15, "slas[1].expect")] == "must not be empty"
    assert "'webhook_url' is required" in errors[(18, "slas[1].actions[0]")]
    assert errors[(19, "slas[2]")] == "'kind' is required"
    assert len(errors) == 5
    assert [a.name for a in loaded.automations] == ["etl"]  # the rest still loads
    shown = [str(e) for e in load_text("slas: {name: x}\n", "d.yaml").errors]
    assert shown == ["d.yaml:1: slas: must be a list"]


def test_a_grace_error_is_not_mistaken_for_the_kinds_tag() -> None:
    # `kind: deadline` puts the tag "deadline" in pydantic's error path, as a field is named.
    text = "slas:\n  - {name: a, kind: deadline, expect: [x],\n     deadline: {cron: 0 9 * * *}}\n"
    assert [str(e) for e in load_text(text, "g.yaml").errors] == []
    text = text.replace("expect: [x],", "expect: [x], grace: -60,")
    assert [str(e) for e in load_text(text, "g.yaml").errors] == [
        "g.yaml:2: slas[0].grace: must not be negative"
    ]


def test_an_unknown_section_lists_the_known_ones_automations_first() -> None:
    errors = [str(e) for e in load_text("slos: []\n", "s.yaml").errors]
    assert errors == [
        "s.yaml:1: slos: is not a known section; "
        "use automations:, connections:, sources:, webhooks:, slas:, deployments:, "
        "silences: or inhibit:"
    ]


def test_an_sla_name_defined_twice_names_both_places(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(ISSUE)
    (tmp_path / "b.yaml").write_text(
        "slas:\n  - {name: worker-heartbeat, kind: freshness, expect: [x], every: 1m}\n"
    )
    both = load_paths([tmp_path])
    assert [str(e) for e in both.errors] == [
        f"{tmp_path / 'b.yaml'}:2: name: SLA 'worker-heartbeat' is also defined at "
        f"{tmp_path / 'a.yaml'}:20; names must be unique"
    ]
    (tmp_path / "b.yaml").write_text("name: worker-heartbeat\ntrigger: {type: event}\n")
    assert load_paths([tmp_path]).ok  # automations and SLAs are named apart


def test_validate_counts_slas(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(ISSUE + "automations:\n  - name: a\n    trigger: {type: event}\n")
    result = CliRunner().invoke(app, ["validate", "-f", str(path)])
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "ok: 1 automation, 3 SLAs in 1 file(s)\n"
    assert result.stderr == ""  # validating applies nothing, so there is nothing to note
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD_SLAS)
    result = CliRunner().invoke(app, ["validate", "-f", str(bad)])
    assert result.exit_code == 1
    assert f"{bad}:9: slas[0].deadline.cron: " in result.stderr
    assert "5 problem(s); 1 automation in 1 file(s) loaded" in result.stderr


async def test_apply_applies_slas_beside_automations(engine: Running, tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(ISSUE + "automations:\n  - name: a\n    trigger: {type: event}\n")
    args = ["apply", "-f", str(path), "--api", engine.url]
    result = await asyncio.to_thread(CliRunner().invoke, app, args)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines() == [
        "created SLA sales-table-by-9",
        "created SLA etl-finishes-within-2h",
        "created SLA worker-heartbeat",
        "created a",
    ]
    assert result.stderr == ""


def test_the_body_the_typed_views_and_the_kinds_follow_the_registry() -> None:
    assert list(DefinitionsBody.model_fields) == [s.name for s in APPLIED]
    loaded = Definitions()
    for section in SECTIONS:
        assert getattr(loaded, section.name) is loaded.of(section.name)
        if section.kind is not None:
            assert (section.kind.section, section.kind.key) == (section.name, section.key)
    assert [s.name for s in SECTIONS if s.default] == ["automations"]


CONNECTION = {"name": "prod", "api_url": "http://prod/api"}
HOOK = {"slug": "orders"}
AUTOMATION = {"name": "a", "trigger": {"type": "event"}}


async def test_one_apply_stores_every_kind_or_none(engine: Running) -> None:
    async with engine.client() as http:
        twice = await http.post(
            "/api/definitions/apply",
            json={"connections": [CONNECTION], "automations": [AUTOMATION, AUTOMATION]},
        )
        assert twice.status_code == 422
        assert twice.json()["field"] == "automations[1].name"
        assert (await http.get("/api/connections")).json() == []  # refused whole

        plan = await http.post(
            "/api/definitions/apply",
            params={"dry_run": "true"},
            json={"connections": [CONNECTION], "webhooks": [HOOK], "automations": [AUTOMATION]},
        )
        assert plan.status_code == 200
        created = {"kind": "created", "reset_triggers": [], "open_windows": 0}
        assert plan.json() == {
            "connections": [{"name": "prod", **created}],
            "webhooks": [{"name": "orders", **created}],
            "slas": [],
            "deployments": [],
            "silences": [],
            "inhibit": [],
            "automations": [{"name": "a", **created}],
        }
        assert (await http.get("/api/connections")).json() == []  # a dry run

        applied = await http.post(
            "/api/definitions/apply",
            json={"connections": [CONNECTION], "webhooks": [HOOK], "automations": [AUTOMATION]},
        )
        assert applied.json() == plan.json()
        again = await http.post(
            "/api/definitions/apply", json={"automations": [AUTOMATION], "webhooks": [HOOK]}
        )
        assert [c["kind"] for c in again.json()["automations"]] == ["unchanged"]


async def test_prune_leaves_the_kinds_the_body_does_not_hold(engine: Running) -> None:
    async with engine.client() as http:
        body = {"connections": [CONNECTION], "webhooks": [HOOK], "automations": [AUTOMATION]}
        await http.post("/api/definitions/apply", json=body)
        other = {"slug": "payments"}
        pruned = await http.post(
            "/api/definitions/apply",
            params={"prune": "true"},
            json={"webhooks": [other], "automations": [], "slas": []},
        )
        assert pruned.status_code == 200
        assert pruned.json()["webhooks"] == [
            {"name": "payments", "kind": "created", "reset_triggers": [], "open_windows": 0},
            {"name": "orders", "kind": "deleted", "reset_triggers": [], "open_windows": 0},
        ]
        assert pruned.json()["automations"] == []  # empty: left alone
        assert [c["name"] for c in (await http.get("/api/connections")).json()] == ["prod"]
        assert [a["name"] for a in (await http.get("/api/automations")).json()] == ["a"]
        sources = await http.post("/api/definitions/apply", json={"sources": []})
        assert sources.status_code == 422  # not applied: read at start-up


def test_silences_and_inhibition_rules_name_what_is_wrong() -> None:
    text = (
        "silences:\n"
        "  - name: sunday\n"
        "    match: {tags: warehouse}\n"
        "    schedule: {cron: '0 2 * *', timezone: Europe/Berlin, duration: 3h}\n"
        "  - name: nothing\n"
        "    match: []\n"
        "    schedule: {cron: '0 2 * * SUN', timezone: Mars/Olympus, duration: 3h}\n"
        "inhibit:\n"
        "  - when: ['automation']\n"
        "    mute: {tags: etl}\n"
    )
    errors = [str(e) for e in load_text(text, "w.yaml").errors]
    assert any(e.startswith("w.yaml:4: silences[0].schedule.cron:") for e in errors), errors
    assert any("silences[1].match: must not be empty" in e for e in errors), errors
    assert any("silences[1].schedule.timezone:" in e and "Mars/Olympus" in e for e in errors)
    assert any("inhibit[0].when" in e and "no operator" in e for e in errors), errors


def test_an_inhibition_rule_without_a_name_is_named_from_its_content() -> None:
    text = "inhibit:\n  - when: {automation: a}\n    mute: {tags: etl}\n"
    loaded = load_text(text, "w.yaml")
    (rule,) = loaded.inhibit
    assert rule.name.startswith("inhibit-")
    assert load_text(text, "again.yaml").inhibit[0].name == rule.name
