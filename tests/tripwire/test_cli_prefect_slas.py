"""`tripwire apply -f prefect.yaml`: a Prefect project file's deployment SLAs applied to a
running engine, replaced as Prefect applies them (created, updated, deleted)."""

from __future__ import annotations

from pathlib import Path

from tests.support import Running
from tests.tripwire.test_cli_automations import invoke

PREFECT_YAML = """\
name: etl
prefect-version: 3.8.0
pull:
  - prefect.deployments.steps.git_clone:
      repository: https://example.com/etl.git
deployments:
  - name: daily
    entrypoint: flows/etl.py:etl
    work_pool: {name: k8s, job_variables: {}}
    schedules: [{cron: "0 2 * * *", timezone: Europe/Berlin}]
    sla:
      - name: time-to-completion
        duration: 600
        severity: high
      - name: lateness
        within: 600
        severity: high
  - name: hourly
    entrypoint: flows/etl.py:etl
"""


async def test_a_prefect_yaml_applies_its_deployments_slas(engine: Running, tmp_path: Path) -> None:
    project = tmp_path / "prefect.yaml"
    project.write_text(PREFECT_YAML)
    code, out, err = await invoke("validate", "-f", str(project))
    assert code == 0, err
    assert out.strip() == "ok: 0 automations, 2 deployments in 1 file(s)"
    code, out, err = await invoke("apply", "-f", str(project), "--api", engine.url)
    assert code == 0, err
    assert out.splitlines() == [
        "created SLA daily:time-to-completion",
        "created SLA daily:lateness",
    ]
    code, out, _ = await invoke("apply", "-f", str(project), "--api", engine.url)
    assert out.splitlines() == [
        "unchanged SLA daily:time-to-completion",
        "unchanged SLA daily:lateness",
    ]

    # Re-applying replaces the deployment's SLAs, as `prefect deploy` does.
    project.write_text(
        PREFECT_YAML.replace("duration: 600", "duration: 900").replace(
            "      - name: lateness\n        within: 600\n",
            "      - name: frequency\n        stale_after: 86400\n",
        )
    )
    code, out, _ = await invoke("apply", "-f", str(project), "--dry-run", "--api", engine.url)
    assert out.splitlines() == [
        "would update SLA daily:time-to-completion",
        "would create SLA daily:frequency",
        "would delete SLA daily:lateness",
        "dry run: nothing was changed",
    ]
    code, out, err = await invoke("apply", "-f", str(project), "--api", engine.url)
    assert code == 0, err
    assert out.splitlines() == [
        "updated SLA daily:time-to-completion",
        "created SLA daily:frequency",
        "deleted SLA daily:lateness",
    ]
    code, out, _ = await invoke("sla", "ls", "--api", engine.url)
    rows = [line.split()[:3] for line in out.splitlines()[1:]]
    assert rows == [
        ["daily:frequency", "freshness", "warning"],
        ["daily:time-to-completion", "duration", "warning"],
    ]


async def test_a_bad_sla_in_a_prefect_yaml_names_its_line(tmp_path: Path) -> None:
    project = tmp_path / "prefect.yaml"
    project.write_text(PREFECT_YAML.replace("within: 600", "within: 600\n        duration: 5"))
    code, _, err = await invoke("validate", "-f", str(project))
    assert code == 1
    assert err.splitlines()[0] == (
        f"{project}:15: deployments[0].sla[1]: gives both duration and within; a Prefect SLA "
        "is one kind: duration (time to completion), within (lateness) or stale_after "
        "(frequency)"
    )
