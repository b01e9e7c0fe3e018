"""The rate limits' pure policy: whose address, when a window is over, and the settings."""

from __future__ import annotations

import pytest

from prefill.ratelimit import (
    Limit,
    LimitKind,
    RateLimited,
    Window,
    address_subject,
    check,
    client_address,
    parse_proxies,
    retry_after,
)
from prefill.settings import Settings, SettingsError

PROXIES = parse_proxies(["10.0.0.0/8", "192.0.2.7", "2001:db8::/32"])


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        # Not a trusted proxy: its header is whatever the client wrote.
        ("203.0.113.5", ["198.51.100.1"], "203.0.113.5"),
        # A trusted proxy: the right-most address that is not one of ours.
        ("10.1.2.3", ["198.51.100.1"], "198.51.100.1"),
        ("10.1.2.3", ["6.6.6.6, 198.51.100.1"], "198.51.100.1"),
        ("10.1.2.3", ["6.6.6.6, 198.51.100.1, 192.0.2.7, 10.9.9.9"], "198.51.100.1"),
        # Several header lines are one list, in order.
        ("10.1.2.3", ["6.6.6.6", "198.51.100.1, 10.2.2.2"], "198.51.100.1"),
        # Only proxies: the left-most of them; no header: the proxy itself.
        ("10.1.2.3", ["10.4.4.4, 192.0.2.7"], "10.4.4.4"),
        ("10.1.2.3", [], "10.1.2.3"),
        ("10.1.2.3", [" , "], "10.1.2.3"),
        # Not an address at all is not a proxy, so it is the client (and counted as such).
        ("10.1.2.3", ["unknown"], "unknown"),
        # IPv6, and an IPv4 peer seen through a dual-stack socket.
        ("2001:db8::1", ["2001:db9::5"], "2001:db9::5"),
        ("::ffff:10.0.0.1", ["198.51.100.9"], "198.51.100.9"),
    ],
)
def test_client_address(peer: str, forwarded: list[str], expected: str) -> None:
    assert client_address(peer, forwarded, PROXIES) == expected


def test_no_trusted_proxies_means_the_peer_whatever_the_header() -> None:
    assert client_address("10.1.2.3", ["198.51.100.1"], ()) == "10.1.2.3"


def test_a_window_over_its_limit_is_refused_with_the_time_left() -> None:
    limit = Limit(count=3, window_seconds=600)
    check(LimitKind.LINK_REQUESTS, limit, Window(3, 1000))  # the third still passes
    with pytest.raises(RateLimited) as refused:
        check(LimitKind.LINK_REQUESTS, limit, Window(4, 12_345))
    assert (refused.value.kind, refused.value.retry_after) == (LimitKind.LINK_REQUESTS, 13)


@pytest.mark.parametrize(
    ("remaining_ms", "seconds"),
    [(1, 1), (999, 1), (1000, 1), (1001, 2), (600_000, 600), (900_000, 600), (0, 600), (-1, 600)],
)
def test_retry_after_is_whole_seconds_within_the_window(remaining_ms: int, seconds: int) -> None:
    assert retry_after(Limit(1, 600), Window(2, remaining_ms)) == seconds


def test_proxies_must_be_addresses_or_blocks() -> None:
    with pytest.raises(ValueError, match=r"'proxy\.example'"):
        parse_proxies(["10.0.0.0/8", "proxy.example"])


def test_settings_read_the_switch_and_the_proxies() -> None:
    env = {"PREFILL_SECRET_KEYS": "k" * 40}
    assert Settings.from_env(env).rate_policy.enabled
    off = Settings.from_env({**env, "PREFILL_RATE_LIMITS": "off"})
    assert not off.rate_policy.enabled
    proxied = Settings.from_env(
        {
            **env,
            "PREFILL_TRUSTED_PROXIES": "10.0.0.0/8, 192.0.2.7",
            "PREFILL_REQUESTS_PER_LINK": "7",
        }
    )
    policy = proxied.rate_policy
    assert [str(n) for n in policy.trusted_proxies] == ["10.0.0.0/8", "192.0.2.7/32"]
    assert policy.link_requests == Limit(7, 600)
    with pytest.raises(SettingsError, match="PREFILL_RATE_LIMITS"):
        Settings.from_env({**env, "PREFILL_RATE_LIMITS": "maybe"})
    with pytest.raises(SettingsError, match="PREFILL_TRUSTED_PROXIES"):
        Settings.from_env({**env, "PREFILL_TRUSTED_PROXIES": "proxy.example"})
    with pytest.raises(SettingsError):
        Settings.from_env({**env, "PREFILL_REQUESTS_PER_LINK": "0"})


@pytest.mark.parametrize(
    ("address", "subject"),
    [
        ("192.0.2.7", "192.0.2.7"),
        ("2001:db8:0:7::1", "2001:db8:0:7::/64"),
        ("2001:db8:0:7:ffff:ffff:ffff:ffff", "2001:db8:0:7::/64"),
        ("", ""),
        ("testclient", "testclient"),
        ("not:an:address", "not:an:address"),
    ],
)
def test_an_ipv6_address_is_limited_by_its_network(address: str, subject: str) -> None:
    assert address_subject(address) == subject
