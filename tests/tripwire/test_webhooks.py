"""Inbound webhooks on a running engine: `tripwire apply`, POST /hooks/{slug} answers,
redeliveries stored once, refused requests kept (secrets blanked) and announced."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
from standardwebhooks.webhooks import Webhook

from events import clock
from events.filters import EventFilter, EventNameFilter
from events.model import ReceivedEvent
from tests.support import Running, StartEngine, eventually
from tests.tripwire.test_cli_automations import invoke

GH_SECRET = "gh-s3cret-value-for-tests"
VENDOR_SECRET = "whsec_" + base64.b64encode(b"vendor-key-of-24-bytes!!").decode()

WEBHOOKS = """\
webhooks:
  - slug: github
    signature: {scheme: github, secret: "{{ secret('GITHUB_WEBHOOK_SECRET') }}"}
    template: |
      {"event": "github.{{ headers['x-github-event'] }}",
       "resource": {"prefect.resource.id": "github.repo.{{ body.repository.full_name }}"},
       "payload": {{ body | tojson }}}
  - slug: vendor
    signature: {scheme: standard-webhooks, secret: "{{ secret('VENDOR_WHSEC') }}"}
    mapping:
      event: "join('.', ['vendor', type])"
      resource:
        prefect.resource.id: "join('.', ['vendor.object', data.id])"
      payload: "data"
  - slug: small
    max_bytes: 64
  - slug: open
"""


@pytest.fixture(autouse=True)
def webhook_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_WEBHOOK_SECRET", GH_SECRET)
    monkeypatch.setenv("VENDOR_WHSEC", VENDOR_SECRET)


async def applied(engine: Running, tmp_path: Path) -> None:
    file = tmp_path / "webhooks.yaml"
    file.write_text(WEBHOOKS)
    code, out, err = await invoke("apply", "-f", str(file), "--api", engine.url)
    assert code == 0, err
    assert out.splitlines() == [
        "created webhook github",
        "created webhook vendor",
        "created webhook small",
        "created webhook open",
    ]


def github_request(
    body: bytes, *, delivery: str | None = None, secret: str = GH_SECRET
) -> dict[str, Any]:
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return {
        "content": body,
        "headers": {
            "content-type": "application/json",
            "x-github-event": "push",
            "x-github-delivery": delivery or str(uuid.uuid4()),
            "x-hub-signature-256": f"sha256={signature}",
        },
    }


PUSH = orjson.dumps({"repository": {"full_name": "acme/etl"}, "ref": "refs/heads/main"})


async def named(engine: Running, name: str, count: int) -> list[ReceivedEvent]:
    """Wait until `count` events named `name` are stored; return them."""
    flt = EventFilter(event=EventNameFilter(name=[name]))

    async def read() -> list[ReceivedEvent]:
        # Count the events read, not `total`: that is a second query, which may see more.
        events = (await engine.engine.store.read(flt, 100)).events
        return events if len(events) >= count else []

    return await eventually(read, 10, f"{count} {name} events")


async def test_a_signed_github_delivery_becomes_an_event_stored_once(
    database_url: str, start_engine: StartEngine, tmp_path: Path
) -> None:
    # database_url first: set up before the engine, so it is dropped after the engine stops.
    engine = await start_engine(database_url=database_url)
    await applied(engine, tmp_path)
    delivery = str(uuid.uuid4())
    async with engine.client() as http:
        first = await http.post("/hooks/github", **github_request(PUSH, delivery=delivery))
        again = await http.post("/hooks/github", **github_request(PUSH, delivery=delivery))
    assert first.status_code == 202, first.text
    assert first.json() == {"id": delivery, "event": "github.push"}
    assert again.json() == first.json()
    (event,) = await named(engine, "github.push", 1)
    assert event.resource.id == "github.repo.acme/etl"
    assert event.payload["ref"] == "refs/heads/main"
    assert event.related[0].id == "tripwire.webhook.github"
    marker = str(uuid.uuid4())
    async with engine.client() as http:  # a later delivery, to know the redelivery is in
        await http.post("/hooks/github", **github_request(PUSH, delivery=marker))
    stored = await named(engine, "github.push", 2)
    assert sorted(str(e.id) for e in stored) == sorted([delivery, marker])
    await engine.stop()


async def test_refusals_answer_401_404_413_422_and_are_kept_without_secrets(
    engine: Running, tmp_path: Path
) -> None:
    await applied(engine, tmp_path)
    tampered = github_request(PUSH)
    tampered["content"] = PUSH.replace(b"etl", b"evil")
    async with engine.client() as http:
        bad_body = await http.post("/hooks/github", **tampered)
        wrong_secret = await http.post(
            "/hooks/github", **github_request(PUSH, secret="not-the-secret")
        )
        unsigned = await http.post("/hooks/github", content=PUSH)
        unknown = await http.post("/hooks/nope", json={})
        too_big = await http.post("/hooks/small", content=b"x" * 65)
        broken = await http.post(
            "/hooks/github", **github_request(orjson.dumps({"no": "repository"}))
        )
    assert [r.status_code for r in (bad_body, wrong_secret, unsigned)] == [401, 401, 401]
    assert "does not match" in bad_body.json()["detail"]
    assert "header is missing" in unsigned.json()["detail"]
    assert unknown.status_code == 404
    assert "tripwire apply" in unknown.json()["detail"]
    assert too_big.status_code == 413
    assert broken.status_code == 422
    assert broken.json()["field"] == "template"
    assert "no attribute 'repository'" in broken.json()["detail"]

    code, out, err = await invoke("webhooks", "rejected", "github", "--api", engine.url)
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == 4
    assert "  422  POST  template: UndefinedError:" in lines[0]  # newest first
    assert "  401  POST  the X-Hub-Signature-256 header is missing" in lines[1]
    code, out, _ = await invoke("webhooks", "rejected", "github", "--json", "--api", engine.url)
    kept = [orjson.loads(line) for line in out.splitlines()]
    assert kept[-1]["headers"]["x-hub-signature-256"] == "***"
    assert kept[-1]["headers"]["x-github-event"] == "push"
    assert kept[-1]["body"] == tampered["content"].decode()
    assert GH_SECRET not in out
    code, out, _ = await invoke("webhooks", "rejected", "small", "--api", engine.url)
    assert "413" in out
    code, _, err = await invoke("webhooks", "rejected", "nope", "--api", engine.url)
    assert code == 1
    assert "no webhook 'nope'" in err

    rejected = await named(engine, "tripwire.webhook.rejected", 5)
    by_webhook = {e.resource.id for e in rejected}
    assert by_webhook == {"tripwire.webhook.github", "tripwire.webhook.small"}
    reasons = sorted(e.payload["status"] for e in rejected)
    assert reasons == [401, 401, 401, 413, 422]
    assert all(GH_SECRET not in e.model_dump_json() for e in rejected)


async def test_a_secret_in_the_body_is_blanked_where_it_is_kept(
    engine: Running, tmp_path: Path
) -> None:
    await applied(engine, tmp_path)
    leaked = orjson.dumps({"oops": GH_SECRET})
    async with engine.client() as http:
        answer = await http.post("/hooks/github", **github_request(leaked, secret="wrong"))
    assert answer.status_code == 401
    (kept,) = (await engine.engine.webhooks.rejected("github"))[:1]
    assert GH_SECRET not in kept["body"]
    assert "***" in kept["body"]


async def test_standard_webhooks_delivery_and_stale_timestamp(
    engine: Running, tmp_path: Path
) -> None:
    await applied(engine, tmp_path)
    body = orjson.dumps({"type": "invoice.paid", "data": {"id": "in_42", "amount": 1200}})

    def signed(message_id: str, at: float) -> dict[str, str]:
        when = clock.now().fromtimestamp(at, clock.now().tzinfo)
        return {
            "webhook-id": message_id,
            "webhook-timestamp": str(int(at)),
            "webhook-signature": Webhook(VENDOR_SECRET).sign(message_id, when, body.decode()),
            "content-type": "application/json",
        }

    async with engine.client() as http:
        ok = await http.post("/hooks/vendor", content=body, headers=signed("msg_1", time.time()))
        stale = await http.post(
            "/hooks/vendor", content=body, headers=signed("msg_2", time.time() - 600)
        )
    assert ok.status_code == 202, ok.text
    assert ok.json()["id"] == str(uuid.uuid5(uuid.NAMESPACE_URL, "tripwire.webhook.vendor#msg_1"))
    assert stale.status_code == 401
    assert "away from now" in stale.json()["detail"]
    (event,) = await named(engine, "vendor.invoice.paid", 1)
    assert event.resource.id == "vendor.object.in_42"
    assert event.payload == {"id": "in_42", "amount": 1200}


async def test_a_missing_secret_is_a_500_that_does_not_name_it_to_the_sender(
    engine: Running, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await applied(engine, tmp_path)
    monkeypatch.delenv("GITHUB_WEBHOOK_SECRET")
    async with engine.client() as http:
        answer = await http.post("/hooks/github", **github_request(PUSH))
    assert answer.status_code == 500
    assert "GITHUB_WEBHOOK_SECRET" not in answer.text
    (kept,) = await engine.engine.webhooks.rejected("github")
    assert "GITHUB_WEBHOOK_SECRET" in kept["reason"]  # the operator sees which
    assert kept["field"] == "signature.secret"


async def test_with_api_auth_signed_hooks_need_no_key_and_unsigned_ones_do(
    start_engine: StartEngine, tmp_path: Path
) -> None:
    engine = await start_engine(api_key="k3y-for-the-api")
    key = {"authorization": "Bearer k3y-for-the-api"}
    secret = "{{ secret('GITHUB_WEBHOOK_SECRET') }}"
    body = {
        "webhooks": [
            {"slug": "github", "signature": {"scheme": "github", "secret": secret}},
            {"slug": "open"},
        ]
    }
    async with engine.client(headers=key) as http:
        assert (await http.post("/api/webhooks/apply", json=body)).status_code == 200
    async with engine.client() as anonymous:
        signed = await anonymous.post("/hooks/github", **github_request(PUSH))
        unsigned = await anonymous.post("/hooks/open", json={"a": 1})
        listing = await anonymous.get("/api/webhooks")
        rejected = await anonymous.get("/api/webhooks/open/rejected")
    async with engine.client(headers=key) as http:
        with_key = await http.post("/hooks/open", json={"a": 1})
    assert signed.status_code == 202, signed.text
    assert unsigned.status_code == 401
    assert "needs the API key" in unsigned.json()["detail"]
    assert listing.status_code == 401
    assert rejected.status_code == 401
    assert with_key.status_code == 202


async def test_apply_is_idempotent_prunes_and_lists(engine: Running, tmp_path: Path) -> None:
    await applied(engine, tmp_path)
    code, out, err = await invoke("webhooks", "ls", "--api", engine.url)
    assert code == 0, err
    assert out.splitlines()[0].split() == ["SLUG", "SIGNATURE", "SHAPE", "URL"]
    assert "github  github             template  /hooks/github" in out
    assert "vendor  standard-webhooks  mapping   /hooks/vendor" in out
    file = tmp_path / "webhooks.yaml"
    code, out, _ = await invoke("apply", "-f", str(file), "--api", engine.url)
    assert out.splitlines()[0] == "unchanged webhook github"
    only = tmp_path / "only.yaml"
    only.write_text("webhooks:\n  - slug: open\n    description: anyone may post\n")
    code, out, _ = await invoke(
        "apply", "-f", str(only), "--prune", "--dry-run", "--api", engine.url
    )
    assert out.splitlines() == [
        "would update webhook open",
        "would delete webhook github",
        "would delete webhook small",
        "would delete webhook vendor",
        "dry run: nothing was changed",
    ]
    code, out, _ = await invoke("apply", "-f", str(only), "--prune", "--api", engine.url)
    assert code == 0
    async with engine.client() as http:
        listed = (await http.get("/api/webhooks")).json()
    assert [(w["slug"], w["description"]) for w in listed] == [("open", "anyone may post")]


async def test_validate_names_the_file_line_and_field_of_a_bad_webhook(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(WEBHOOKS)
    code, out, err = await invoke("validate", "-f", str(good))
    assert code == 0, err
    assert out.strip() == "ok: 0 automations, 4 webhooks in 1 file(s)"
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "webhooks:\n"
        "  - slug: github\n"
        "    signature:\n"
        "      scheme: github\n"
        "      secret: plain-text\n"
        "  - slug: vendor\n"
        "    mapping: {event: \"join('.',\"}\n"
        "  - slug: open\n"
        "  - slug: open\n"
    )
    code, _, err = await invoke("validate", "-f", str(bad))
    assert code == 1
    assert f"{bad}:5: webhooks[0].signature.secret: must be a template" in err
    assert f"{bad}:7: webhooks[1].mapping.event: JMESPath" in err
    assert f"{bad}:9: slug: webhook 'open' is also defined at {bad}:8" in err
