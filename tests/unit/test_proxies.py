"""nugat.proxies: which peers are trusted proxies, and the client address behind them."""

from __future__ import annotations

from typing import Any

import pytest

from nugat.content_origin import ContentOrigin
from nugat.proxies import InvalidProxySetting, TrustedProxies, normalized, split_setting
from support.asgi import run as run_asgi

LOOPBACK = TrustedProxies()  # the default: 127.0.0.0/8 and ::1
NETWORKS = TrustedProxies(["10.0.0.0/8", "192.0.2.1", "2001:db8::/32"])


def test_the_default_trusts_the_loopback_only() -> None:
    assert LOOPBACK.trusts("127.0.0.1") and LOOPBACK.trusts("127.9.8.7") and LOOPBACK.trusts("::1")
    assert LOOPBACK.trusts("::ffff:127.0.0.1")  # an IPv4-mapped peer of a dual-stack socket
    assert not LOOPBACK.trusts("10.0.0.1") and not LOOPBACK.trusts("::2")
    assert not LOOPBACK.trusts("testclient") and not LOOPBACK.trusts("")


def test_networks_and_addresses() -> None:
    assert NETWORKS.trusts("10.200.3.4") and NETWORKS.trusts("192.0.2.1") and NETWORKS.trusts("2001:db8::7")
    assert not NETWORKS.trusts("192.0.2.2") and not NETWORKS.trusts("127.0.0.1")


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        ("203.0.113.5", ["198.51.100.1"], "203.0.113.5"),  # not a proxy: its header is ignored
        ("127.0.0.1", [], "127.0.0.1"),  # a proxy that sent no header
        ("127.0.0.1", ["198.51.100.1"], "198.51.100.1"),  # nginx with $remote_addr
        ("127.0.0.1", ["6.6.6.6, 198.51.100.1"], "198.51.100.1"),  # a client's forgery, then what nginx saw
        ("127.0.0.1", ["6.6.6.6", "198.51.100.1"], "198.51.100.1"),  # the same in two header lines
        ("127.0.0.1", ["6.6.6.6, 198.51.100.1, 127.0.0.5"], "198.51.100.1"),  # two proxies
        ("127.0.0.1", ["127.0.0.9"], "127.0.0.9"),  # every hop trusted: the leftmost
        ("127.0.0.1", ["::ffff:198.51.100.1"], "198.51.100.1"),
        ("127.0.0.1", ["[2001:db8::1]:4711"], "2001:db8::1"),
        ("127.0.0.1", ["198.51.100.1:4711"], "198.51.100.1"),
        ("127.0.0.1", ["2001:DB8:0::1"], "2001:db8::1"),
        ("127.0.0.1", ["nonsense, 198.51.100.1"], "198.51.100.1"),
        ("127.0.0.1", ["198.51.100.1, nonsense"], "127.0.0.1"),  # past garbage, the hop that sent it
        ("127.0.0.1", [" , ,198.51.100.1 ,"], "198.51.100.1"),
        ("::ffff:127.0.0.1", ["198.51.100.1"], "198.51.100.1"),
        ("unknown", ["198.51.100.1"], "unknown"),
    ],
)
def test_the_client_is_the_rightmost_untrusted_address(peer: str, forwarded: list[str], client: str) -> None:
    assert LOOPBACK.client(peer, forwarded) == client


def test_a_long_header_is_cut_to_its_rightmost_hops() -> None:
    hops = ", ".join(["127.0.0.2"] * 10_000)
    assert LOOPBACK.client("127.0.0.1", [f"6.6.6.6, {hops}"]) == "127.0.0.2"


def test_settings_are_parsed_and_wrong_entries_named() -> None:
    assert split_setting(" 10.0.0.1, 10.0.0.0/8 ::1 ,") == ("10.0.0.1", "10.0.0.0/8", "::1")
    assert TrustedProxies(split_setting("10.1.2.3/8")).trusts("10.9.9.9")  # host bits are forgiven
    with pytest.raises(InvalidProxySetting, match=r"'nginx' is not an IP address or network"):
        TrustedProxies(["127.0.0.1", "nginx"])


def test_normalized() -> None:
    assert str(normalized("::ffff:10.0.0.1")) == "10.0.0.1"
    assert normalized("example.com") is None and normalized("") is None


def test_the_content_origin_believes_x_forwarded_host_only_from_a_trusted_proxy() -> None:
    """nugat.content_origin: a page URL on the content host is refused (404) only if the host is believed."""

    def status(peer: str) -> int:
        sent: list[Any] = []

        async def inner(scope: Any, receive: Any, send: Any) -> None:
            await send({"type": "http.response.start", "status": 200, "headers": []})

        async def send(message: Any) -> None:
            sent.append(message)

        headers = [(b"host", b"nuget.example.com"), (b"x-forwarded-host", b"pkgs.example.com")]
        scope = {"type": "http", "path": "/account", "headers": headers, "client": (peer, 4711)}
        origin = ContentOrigin(inner, "https://pkgs.example.com", True, LOOPBACK)
        run_asgi(origin(scope, None, send))  # type: ignore[arg-type]
        return int(sent[0]["status"])

    assert status("127.0.0.1") == 404  # the proxy says the content host was asked for
    assert status("203.0.113.5") == 200  # a client saying so is not believed
