"""The SSRF guard: private addresses are refused, names are resolved, and messages never
show a URL's path or query (where tokens live)."""

from __future__ import annotations

import apprise
import httpx
import pytest

from actions.errors import ActionFailed, ActionRetry, UnsafeURL
from actions.guard import AddressGuard, apprise_target
from actions.outbound import action_client
from tests.actions.receivers import Receiver, Reply

FIELD = "call-webhook url"


@pytest.mark.parametrize(
    ("url", "shown", "kind"),
    [
        ("http://127.0.0.1:9/x?token=s3cret", "http://127.0.0.1:9", "a loopback address"),
        ("https://10.1.2.3/hooks/s3cret", "https://10.1.2.3", "a private address"),
        (
            "http://169.254.169.254/latest/meta-data/s3cret",
            "http://169.254.169.254",
            "a link-local address",
        ),
        ("http://[::1]:8080/s3cret", "http://[::1]:8080", "a loopback address"),
        (
            "http://[::ffff:10.0.0.1]/s3cret",
            "http://[::ffff:10.0.0.1]",
            "a private address (IPv4 inside IPv6)",
        ),
        ("http://0.0.0.0/s3cret", "http://0.0.0.0", "an unspecified address"),
        ("http://224.0.0.1/s3cret", "http://224.0.0.1", "a multicast address"),
        ("http://100.64.0.1/s3cret", "http://100.64.0.1", "a non-public address"),
    ],
)
async def test_private_address_literals_are_refused_without_path_or_query(
    url: str, shown: str, kind: str
) -> None:
    with pytest.raises(UnsafeURL) as refused:
        await AddressGuard(allow_private=False).check(url, FIELD)
    message = refused.value.message
    assert message.startswith(f"{FIELD}: {shown} resolves to ")
    assert kind in message
    assert "TRIPWIRE_ALLOW_PRIVATE_URLS=true" in message
    assert "s3cret" not in message
    assert isinstance(refused.value, ActionFailed)  # permanent: never retried


async def test_a_name_resolving_to_loopback_is_refused() -> None:
    with pytest.raises(UnsafeURL) as refused:
        await AddressGuard(allow_private=False).check("http://localhost:8080/hook/s3cret", FIELD)
    assert "http://localhost:8080 resolves to 127.0.0.1, a loopback address" in str(refused.value)
    assert "s3cret" not in str(refused.value)


async def test_other_spellings_of_loopback_are_resolved_and_refused() -> None:
    # 2130706433 is 127.0.0.1 as one number; the resolver reads it as an address.
    with pytest.raises(UnsafeURL, match="loopback"):
        await AddressGuard(allow_private=False).check("http://2130706433/x", FIELD)


@pytest.mark.parametrize("url", ["https://93.184.215.14/hook", "https://[2606:4700::1111]:8443/"])
async def test_public_addresses_pass(url: str) -> None:
    await AddressGuard(allow_private=False).check(url, FIELD)


@pytest.mark.parametrize("url", ["ftp://93.184.215.14/x", "file:///etc/passwd", "gopher://a/"])
async def test_only_http_and_https_are_allowed(url: str) -> None:
    for guard in (AddressGuard(allow_private=False), AddressGuard(allow_private=True)):
        with pytest.raises(UnsafeURL, match="give an http:// or https:// URL"):
            await guard.check(url, FIELD)


async def test_a_name_that_does_not_resolve_is_retried() -> None:
    with pytest.raises(ActionRetry) as retry:
        await AddressGuard(allow_private=False).check("https://nothing.invalid/s3cret", FIELD)
    assert "https://nothing.invalid does not resolve" in retry.value.message
    assert "s3cret" not in retry.value.message


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:9/x", "http://10.1.2.3/", "http://localhost/", "http://[::1]/"]
)
async def test_allow_private_lets_private_addresses_through(url: str) -> None:
    await AddressGuard(allow_private=True).check(url, FIELD)


@pytest.mark.parametrize(
    ("url", "target"),
    [
        ("json://user:pw@127.0.0.1:8080/path?token=x", "http://127.0.0.1:8080"),
        ("jsons://10.0.0.1/hook", "https://10.0.0.1"),
        ("xml://10.0.0.1/hook", "http://10.0.0.1"),
        ("form://10.0.0.1/hook", "http://10.0.0.1"),
        ("gotify://10.1.1.1/token", "http://10.1.1.1"),
        ("ntfy://10.1.1.1/topic", "http://10.1.1.1"),
        ("mailtos://user:pw@example.com?smtp=10.0.0.5", "https://10.0.0.5:587"),
    ],
)
def test_self_hosted_apprise_urls_name_the_host_to_check(url: str, target: str) -> None:
    assert apprise_target(apprise.Apprise.instantiate(url)) == target


@pytest.mark.parametrize(
    "url",
    [
        "slack://T1/B1/abc",
        "discord://123456/abcdefghijkl",
        "tgram://123456789:abcdefg_hijklmnop/12315544/",
        "ntfy://my-topic",  # ntfy.sh, the public service
        "pagerduty://integration@apikey",
    ],
)
def test_cloud_apprise_urls_go_to_fixed_public_hosts(url: str) -> None:
    assert apprise_target(apprise.Apprise.instantiate(url)) is None


async def test_a_self_hosted_apprise_host_is_refused_when_private() -> None:
    target = apprise_target(apprise.Apprise.instantiate("json://u:pw@10.0.0.7:8080/s3cret"))
    assert target is not None
    with pytest.raises(UnsafeURL, match=r"http://10\.0\.0\.7:8080 resolves to 10\.0\.0\.7"):
        await AddressGuard(allow_private=False).check(target, "send-notification url")


async def test_the_action_client_connects_only_to_public_addresses() -> None:
    # What the check passed is what gets connected to: the client's own resolver refuses
    # a name that resolves to loopback, so a DNS answer changed after the check fails too.
    async with Receiver(Reply(200, "ok")) as receiver:
        guarded = action_client(connections=2, timeout=5)
        open_ = action_client(connections=2, timeout=5, allow_private=True)
        try:
            with pytest.raises(httpx.TransportError, match="a loopback address"):
                await guarded.get(f"http://localhost:{receiver.port}/")
            assert receiver.requests == []
            answer = await open_.get(f"http://localhost:{receiver.port}/")
            assert answer.text == "ok"
        finally:
            await guarded.aclose()
            await open_.aclose()
    assert len(receiver.requests) == 1
