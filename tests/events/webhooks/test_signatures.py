"""Webhook signatures: the published test vectors, and what must be refused."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks.webhooks import Webhook

from events.webhooks.errors import BadSignature, SecretUnavailable
from events.webhooks.model import GitHubSignature, HmacSignature, StandardWebhooksSignature
from events.webhooks.signatures import verify

# Published by GitHub ("Validating webhook deliveries").
GH_SECRET = "It's a Secret to Everybody"
GH_BODY = b"Hello, World!"
GH_SIGNATURE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"

# Published with the Standard Webhooks spec.
SW_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SW_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SW_TIMESTAMP = 1614265330
SW_BODY = b'{"test": 2432232314}'
SW_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
SW_NOW = datetime.fromtimestamp(SW_TIMESTAMP, UTC)

GITHUB = GitHubSignature(scheme="github", secret="{{ secret('S') }}")
STANDARD = StandardWebhooksSignature(scheme="standard-webhooks", secret="{{ secret('S') }}")
NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def sw_headers(signature: str = SW_SIGNATURE, timestamp: int = SW_TIMESTAMP) -> dict[str, str]:
    return {
        "webhook-id": SW_ID,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature,
    }


def test_githubs_published_vector_passes() -> None:
    verify(GITHUB, [GH_SECRET], {"x-hub-signature-256": GH_SIGNATURE}, GH_BODY, NOW)


@pytest.mark.parametrize(
    ("secrets", "headers", "body", "words"),
    [
        ([GH_SECRET], {"x-hub-signature-256": GH_SIGNATURE}, b"Hello, World?", "does not match"),
        (["It's a secret to everybody"], {"x-hub-signature-256": GH_SIGNATURE}, GH_BODY, "match"),
        ([GH_SECRET], {}, GH_BODY, "X-Hub-Signature-256 header is missing"),
        ([GH_SECRET], {"x-hub-signature-256": GH_SIGNATURE[7:]}, GH_BODY, "sha256=<hex"),
        ([GH_SECRET], {"x-hub-signature-256": "sha256=zz"}, GH_BODY, "not a hex digest"),
        ([GH_SECRET], {"x-hub-signature-256": "sha1=" + GH_SIGNATURE[7:]}, GH_BODY, "sha256="),
    ],
)
def test_github_refuses_tampered_bodies_wrong_secrets_and_missing_headers(
    secrets: list[str], headers: dict[str, str], body: bytes, words: str
) -> None:
    with pytest.raises(BadSignature, match=words):
        verify(GITHUB, secrets, headers, body, NOW)


def test_github_accepts_either_secret_while_rotating() -> None:
    verify(GITHUB, ["the-new-one", GH_SECRET], {"x-hub-signature-256": GH_SIGNATURE}, GH_BODY, NOW)


def test_standard_webhooks_published_vector_passes() -> None:
    verify(STANDARD, [SW_SECRET], sw_headers(), SW_BODY, SW_NOW)


def test_standard_webhooks_agrees_with_the_reference_library() -> None:
    secret = "whsec_" + base64.b64encode(b"k" * 24).decode()
    sent_at = NOW - timedelta(seconds=30)
    signature = Webhook(secret).sign("msg_1", sent_at, '{"a": 1}')
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": signature,
    }
    verify(STANDARD, [secret], headers, b'{"a": 1}', NOW)


def test_standard_webhooks_takes_any_of_several_signatures() -> None:
    other = "v1," + base64.b64encode(b"x" * 32).decode()
    verify(STANDARD, [SW_SECRET], sw_headers(f"v1a,abc {other} {SW_SIGNATURE}"), SW_BODY, SW_NOW)


@pytest.mark.parametrize(
    ("headers", "body", "now", "words"),
    [
        (sw_headers(), b'{"test": 2432232315}', SW_NOW, "does not match"),
        (sw_headers(), SW_BODY, SW_NOW + timedelta(minutes=5, seconds=1), "301s away"),
        (sw_headers(), SW_BODY, SW_NOW - timedelta(minutes=6), "360s away"),
        (sw_headers(timestamp=SW_TIMESTAMP + 1), SW_BODY, SW_NOW, "does not match"),
        (sw_headers("v1a,abc"), SW_BODY, SW_NOW, "no v1,<base64>"),
        ({"webhook-id": SW_ID}, SW_BODY, SW_NOW, "webhook-timestamp header is missing"),
        (sw_headers() | {"webhook-timestamp": "soon"}, SW_BODY, SW_NOW, "Unix time"),
    ],
)
def test_standard_webhooks_refuses_tampering_and_stale_timestamps(
    headers: dict[str, str], body: bytes, now: datetime, words: str
) -> None:
    with pytest.raises(BadSignature, match=words):
        verify(STANDARD, [SW_SECRET], headers, body, now)


def test_standard_webhooks_refuses_a_wrong_secret_and_flags_a_malformed_one() -> None:
    wrong = "whsec_" + base64.b64encode(b"w" * 24).decode()
    with pytest.raises(BadSignature, match="does not match"):
        verify(STANDARD, [wrong], sw_headers(), SW_BODY, SW_NOW)
    with pytest.raises(SecretUnavailable, match="whsec_"):
        verify(STANDARD, ["whsec_not base64!"], sw_headers(), SW_BODY, SW_NOW)


def test_hmac_with_header_encoding_and_prefix() -> None:
    digest = hmac.new(b"shh-123", b"payload", hashlib.sha256).digest()
    hexed = HmacSignature(
        scheme="hmac-sha256", secret="{{ secret('S') }}", header="X-Signature", prefix="sha256="
    )
    verify(hexed, ["shh-123"], {"x-signature": "sha256=" + digest.hex().upper()}, b"payload", NOW)
    with pytest.raises(BadSignature, match="must start with 'sha256='"):
        verify(hexed, ["shh-123"], {"x-signature": digest.hex()}, b"payload", NOW)
    with pytest.raises(BadSignature, match="does not match"):
        verify(hexed, ["shh-123"], {"x-signature": "sha256=" + digest.hex()}, b"payload!", NOW)

    b64 = HmacSignature(
        scheme="hmac-sha256", secret="{{ secret('S') }}", header="X-Sig", encoding="base64"
    )
    verify(b64, ["shh-123"], {"x-sig": base64.b64encode(digest).decode()}, b"payload", NOW)
    with pytest.raises(BadSignature, match="X-Sig is not base64"):
        verify(b64, ["shh-123"], {"x-sig": "%%%"}, b"payload", NOW)
    with pytest.raises(BadSignature, match="X-Sig header is missing"):
        verify(b64, ["shh-123"], {}, b"payload", NOW)
