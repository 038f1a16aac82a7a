"""Signature checks over the raw request bytes, compared in constant time.

Each check takes the rendered secrets (several while a secret is rotated) and the request's
lower-cased headers, and raises BadSignature saying what is wrong, never what was expected.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Iterable, Mapping
from datetime import datetime

from events.webhooks.errors import BadSignature, SecretUnavailable
from events.webhooks.model import (
    GitHubSignature,
    HmacSignature,
    StandardWebhooksSignature,
)

GITHUB_HEADER = "x-hub-signature-256"
SW_ID, SW_TIMESTAMP, SW_SIGNATURE = "webhook-id", "webhook-timestamp", "webhook-signature"
SIGNATURE_HEADERS = frozenset({GITHUB_HEADER, "x-hub-signature", SW_SIGNATURE})


def _mac(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


def _any_equal(sent: Iterable[bytes], expected: list[bytes]) -> bool:
    # Every pair is compared: how long this takes says nothing about which one matched.
    found = False
    for candidate in sent:
        for digest in expected:
            found |= hmac.compare_digest(candidate, digest)
    return found


def _header(headers: Mapping[str, str], name: str, shown: str) -> str:
    value = headers.get(name, "").strip()
    if not value:
        raise BadSignature(f"the {shown} header is missing; the request is not signed")
    return value


def verify_github(
    signature: GitHubSignature, secrets: list[str], headers: Mapping[str, str], body: bytes
) -> None:
    """`X-Hub-Signature-256: sha256=<hex>` over the body."""
    del signature  # GitHub's scheme has nothing to configure beyond the secret
    sent = _header(headers, GITHUB_HEADER, "X-Hub-Signature-256")
    algorithm, _, digest = sent.partition("=")
    if algorithm != "sha256":
        raise BadSignature("X-Hub-Signature-256 must look like sha256=<hex digest>")
    try:
        decoded = bytes.fromhex(digest)
    except ValueError:
        raise BadSignature("X-Hub-Signature-256 is not a hex digest") from None
    if not _any_equal([decoded], [_mac(s.encode(), body) for s in secrets]):
        raise BadSignature("X-Hub-Signature-256 does not match the body and the secret")


def _whsec_key(secret: str) -> bytes:
    encoded = secret.strip().removeprefix("whsec_")
    try:
        # Some senders show the secret without its base64 padding.
        return base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except binascii.Error:
        raise SecretUnavailable(
            "the secret is not a Standard Webhooks secret (whsec_ followed by base64)",
            field="signature.secret",
        ) from None


def verify_standard_webhooks(
    signature: StandardWebhooksSignature,
    secrets: list[str],
    headers: Mapping[str, str],
    body: bytes,
    now: datetime,
) -> None:
    """webhook-id, webhook-timestamp (within the tolerance of now) and webhook-signature,
    a space-separated list of `v1,<base64>`; any one matching any secret is enough."""
    message_id = _header(headers, SW_ID, SW_ID)
    stamp = _header(headers, SW_TIMESTAMP, SW_TIMESTAMP)
    sent = _header(headers, SW_SIGNATURE, SW_SIGNATURE)
    try:
        timestamp = int(stamp)
    except ValueError:
        raise BadSignature("webhook-timestamp must be a Unix time in seconds") from None
    skew = abs(now.timestamp() - timestamp)
    tolerance = signature.tolerance.total_seconds()
    if skew > tolerance:
        raise BadSignature(
            f"webhook-timestamp is {skew:.0f}s away from now; at most {tolerance:.0f}s is "
            "accepted (a replayed or long-delayed request, or a sender's clock off)"
        )
    signed = f"{message_id}.{timestamp}.".encode() + body
    candidates = []
    for part in sent.split():
        version, _, value = part.partition(",")
        if version != "v1":
            continue  # other versions (v1a: asymmetric) are not ours to check
        try:
            candidates.append(base64.b64decode(value, validate=True))
        except binascii.Error:
            continue
    if not candidates:
        raise BadSignature("webhook-signature holds no v1,<base64> signature")
    if not _any_equal(candidates, [_mac(_whsec_key(s), signed) for s in secrets]):
        raise BadSignature("webhook-signature does not match the request and the secret")


def verify_hmac(
    signature: HmacSignature, secrets: list[str], headers: Mapping[str, str], body: bytes
) -> None:
    """The configured header: optional prefix, then the hex or base64 HMAC-SHA256 of the
    body keyed with the secret's UTF-8 bytes."""
    sent = _header(headers, signature.header.lower(), signature.header)
    if signature.prefix:
        if not sent.startswith(signature.prefix):
            raise BadSignature(f"{signature.header} must start with {signature.prefix!r}")
        sent = sent[len(signature.prefix) :]
    try:
        if signature.encoding == "hex":
            decoded = bytes.fromhex(sent)
        else:
            decoded = base64.b64decode(sent, validate=True)
    except (ValueError, binascii.Error):
        raise BadSignature(f"{signature.header} is not {signature.encoding}") from None
    if not _any_equal([decoded], [_mac(s.encode(), body) for s in secrets]):
        raise BadSignature(f"{signature.header} does not match the body and the secret")


def verify(
    signature: GitHubSignature | StandardWebhooksSignature | HmacSignature,
    secrets: list[str],
    headers: Mapping[str, str],
    body: bytes,
    now: datetime,
) -> None:
    """Raise BadSignature unless the request is signed as `signature` says."""
    if isinstance(signature, GitHubSignature):
        verify_github(signature, secrets, headers, body)
    elif isinstance(signature, StandardWebhooksSignature):
        verify_standard_webhooks(signature, secrets, headers, body, now)
    else:
        verify_hmac(signature, secrets, headers, body)


def signature_headers(
    signature: GitHubSignature | StandardWebhooksSignature | HmacSignature | None,
) -> frozenset[str]:
    """Lower-cased headers that carry a signature, blanked where requests are kept."""
    if isinstance(signature, HmacSignature):
        return SIGNATURE_HEADERS | {signature.header.lower()}
    return SIGNATURE_HEADERS
