"""A secret handed to an action never shows up anywhere but at its target: not in logs,
events, the ledger, API answers, error messages, nor the database files, even when the
target fails, echoes it back, or a template error would quote it."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from events.embedded import free_port
from tests.actions.prefect_server import PrefectServer
from tests.actions.receivers import Receiver, Reply
from tests.actions.test_prefect_blocks import save_blocks
from tests.support import StartEngine, eventually

SECRET = "s3cr3t-Hook-T0ken-4f9a"
TEMPLATE = "{{ secret('HOOK_TOKEN') }}"


def files(home: Path) -> dict[str, str]:
    """Every file under the engine's home (databases, WAL files), as text."""
    return {
        str(file): file.read_bytes().decode("latin-1")
        for file in sorted(Path(home).rglob("*"))
        if file.is_file()
    }


def automation(name: str, action: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "trigger": {"type": "event", "expect": ["leak.test"]},
        "actions": [{"retries": 0, **action}],
    }


async def test_a_secret_is_in_no_log_event_ledger_row_answer_or_file(
    start_engine: StartEngine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secrets = tmp_path / "secrets.env"
    secrets.write_text(f"HOOK_TOKEN={SECRET}\n")
    # The target refuses the call and quotes the token back in its answer.
    async with Receiver(Reply(400, f"invalid token {SECRET} for this hook")) as target:
        running = await start_engine(secrets_file=secrets, allow_private_urls=True)
        automations = [
            automation(
                "echoed",
                {
                    "type": "call-webhook",
                    "url": target.url(f"/hook/{TEMPLATE}?token={TEMPLATE}"),
                    "headers": {"Authorization": f"Bearer {TEMPLATE}"},
                    "json": {"token": TEMPLATE, "note": f"token={TEMPLATE}"},
                },
            ),
            automation(
                "unreachable",
                {
                    "type": "call-webhook",
                    "url": f"http://127.0.0.1:{free_port()}/hook?token={TEMPLATE}",
                },
            ),
            # jinja's own error would name the missing key: the secret's value.
            automation(
                "template-error",
                {
                    "type": "emit-event",
                    "event": "{{ {}[secret('HOOK_TOKEN')] }}",
                    "resource": {"prefect.resource.id": "leak.r"},
                },
            ),
            automation(
                "emitted",
                {
                    "type": "emit-event",
                    "event": "leak.emitted",
                    "resource": {"prefect.resource.id": "leak.r", "token": TEMPLATE},
                    "payload": {"token": TEMPLATE},
                },
            ),
        ]
        async with running.client() as http:
            for definition in automations:
                created = await http.post("/api/automations/", json=definition)
                assert created.status_code == 201, created.text
            event = {"event": "leak.test", "resource": {"prefect.resource.id": "leak.r"}}
            assert (await http.post("/api/events", json=event)).status_code == 202

            async def all_done() -> list[dict[str, Any]] | None:
                listed: list[dict[str, Any]] = (
                    await http.get("/api/actions", params={"limit": 50})
                ).json()
                done = [a for a in listed if a["status"] in ("succeeded", "failed")]
                return listed if len(done) == len(automations) else None

            listed = await eventually(all_done, 20, "every action done")
            # The target did get the real secret: the test would prove nothing otherwise.
            [call] = target.requests
            assert call.headers["authorization"] == f"Bearer {SECRET}"
            assert SECRET in call.query
            await running.wait_stored(1 + 2 * len(automations) + 1)  # lifecycle, emitted
            answers = [await http.get("/api/actions", params={"limit": 50})]
            answers += [await http.get(f"/api/actions/{a['id']}") for a in listed]
            answers.append(await http.post("/api/events/filter", json={"limit": 200}))
            answers += [await http.get(f"/api/automations/{a['name']}") for a in automations]
            answers += [
                await http.get(f"/api/automations/{a['name']}/decisions") for a in automations
            ]
        by_name = {a["automation_name"]: a for a in listed}
        assert by_name["echoed"]["status"] == "failed"
        assert "***" in str(by_name["echoed"])  # masked where it was quoted, not dropped
        assert by_name["template-error"]["status"] == "failed"
        stored = answers[-1 - 2 * len(automations)].json()["events"]
        assert "leak.emitted" in {e["event"] for e in stored}
        await running.stop()

    places: dict[str, str] = {
        "answers": "\n".join(a.text for a in answers),
        "logs": "\n".join(
            record.getMessage() + (caplog.text if record.exc_info else "")
            for record in caplog.records
        ),
        "log output": caplog.text,
    }
    places.update(files(running.engine.settings.home))
    # httpx logs each request at INFO: with the target's origin only, never its path.
    logged = [r.getMessage() for r in caplog.records if r.name == "httpx"]
    assert any(f"http://127.0.0.1:{target.port}/... " in line for line in logged), logged
    leaked = [place for place, text in places.items() if SECRET in text]
    assert not leaked
    assert len(places) > 3  # the database files were read


@pytest.mark.prefect
async def test_a_prefect_blocks_secrets_are_in_no_log_event_ledger_row_answer_or_file(
    start_engine: StartEngine,
    prefect_server: PrefectServer,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    async with Receiver(Reply(400, f"invalid token {SECRET} for this hook")) as target:
        # Saved with Prefect's own classes: the secret lives only on the Prefect server.
        ids = save_blocks(
            prefect_server,
            tmp_path,
            [
                {
                    "class": "CustomWebhookNotificationBlock",
                    "name": "leaky-custom",
                    "fields": {
                        "name": "ops",
                        "url": target.url("/custom/{{token}}"),
                        "json_data": {"text": "{{body}}", "token": "{{token}}"},
                        "secrets": {"token": SECRET},
                    },
                },
                {
                    "class": "Webhook",
                    "name": "leaky-webhook",
                    "fields": {
                        "method": "POST",
                        "url": target.url("/webhook"),
                        "headers": {"Authorization": f"Bearer {SECRET}"},
                    },
                },
            ],
        )
        running = await start_engine(allow_private_urls=True, prefect_api_url=prefect_server.url)
        automations = [
            automation(
                "custom-block",
                {
                    "type": "send-notification",
                    "block_document_id": ids["leaky-custom"],
                    "body": "b",
                },
            ),
            automation(
                "webhook-block",
                {"type": "call-webhook", "block_document_id": ids["leaky-webhook"], "payload": "p"},
            ),
        ]
        async with running.client() as http:
            for definition in automations:
                created = await http.post("/api/automations/", json=definition)
                assert created.status_code == 201, created.text
            event = {"event": "leak.test", "resource": {"prefect.resource.id": "leak.r"}}
            assert (await http.post("/api/events", json=event)).status_code == 202

            async def all_failed() -> list[dict[str, Any]] | None:
                listed: list[dict[str, Any]] = (await http.get("/api/actions")).json()
                failed = [a for a in listed if a["status"] == "failed"]
                return listed if len(failed) == len(automations) else None

            listed = await eventually(all_failed, 30, "both block actions failed")
            # The target got the real secret from both blocks.
            paths = sorted(call.path for call in target.requests)
            assert paths == [f"/custom/{SECRET}", "/webhook"]
            await running.wait_stored(1 + 2 * len(automations))
            answers = [await http.get("/api/actions")]
            answers += [await http.get(f"/api/actions/{a['id']}") for a in listed]
            answers.append(await http.post("/api/events/filter", json={"limit": 200}))
        assert all("***" in str(entry) for entry in listed)  # masked where quoted
        await running.stop()

    places: dict[str, str] = {
        "answers": "\n".join(a.text for a in answers),
        "log output": caplog.text,
    }
    places.update(files(running.engine.settings.home))
    leaked = [place for place, text in places.items() if SECRET in text]
    assert not leaked
    assert len(places) > 2  # the database files were read
