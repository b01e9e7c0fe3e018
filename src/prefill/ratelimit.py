"""Rate limits against token guessing, one link hammered, and admin key guessing.

Counted in Redis, so every instance and worker shares one count, by a script that counts and
starts the window in one atomic step (Litestar's RateLimitMiddleware counts per process). This
module is the policy: which limit, whose address, when a count is over. store/limits.py counts.

Each limit is a fixed window started by its first request: `count` requests pass, the rest are
answered 429 until the window ends (`Retry-After`). Per address, only links refused without a
valid signature count (guessing), so a corporate NAT where many people open their own links
never meets it; per link, only validly signed links count, each link on its own, so a scanner
that fetches every link of a campaign once blocks no one.
"""

from __future__ import annotations

import enum
import ipaddress
import math
from collections.abc import Iterable, Sequence

import msgspec

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class LimitKind(enum.StrEnum):
    """What a limit counts; the metric's label values."""

    REFUSED_LINKS = "refused_links"
    """Links refused without a valid signature, per client address."""
    LINK_REQUESTS = "link_requests"
    """Requests of one validly signed link (its customer, campaign, generation and purpose)."""
    ADMIN_FAILURES = "admin_failures"
    """Admin API keys presented and refused, per client address."""


class Limit(msgspec.Struct, frozen=True):
    count: int
    """Requests let through per window; the next one is refused."""
    window_seconds: int


class RateLimits(msgspec.Struct, frozen=True, kw_only=True):
    """The three limits and whom to believe about a client's address."""

    enabled: bool = True
    """False only for load tests and benchmarks (`PREFILL_RATE_LIMITS=off`)."""
    refused_links: Limit = Limit(200, 600)
    link_requests: Limit = Limit(100, 600)
    admin_failures: Limit = Limit(20, 600)
    trusted_proxies: tuple[IPNetwork, ...] = ()
    """Proxies whose `X-Forwarded-For` is believed (see `client_address`)."""

    def limit(self, kind: LimitKind) -> Limit:
        return {
            LimitKind.REFUSED_LINKS: self.refused_links,
            LimitKind.LINK_REQUESTS: self.link_requests,
            LimitKind.ADMIN_FAILURES: self.admin_failures,
        }[kind]


DISABLED = RateLimits(enabled=False)


class Window(msgspec.Struct, frozen=True, array_like=True):
    """What Redis answers for a counter: the count so far and the window's remaining ms."""

    count: int
    remaining_ms: int


class RateLimited(Exception):
    """Over a limit: answer 429 with `retry_after` seconds, the same answer for every kind."""

    def __init__(self, kind: LimitKind, retry_after: int) -> None:
        super().__init__(kind.value)
        self.kind = kind
        self.retry_after = retry_after


def check(kind: LimitKind, limit: Limit, window: Window) -> None:
    """Raises RateLimited when the window's count is over the limit."""
    if window.count > limit.count:
        raise RateLimited(kind, retry_after(limit, window))


def retry_after(limit: Limit, window: Window) -> int:
    """Whole seconds until the window ends: at least 1, at most the window (a counter without
    a TTL, which the script never leaves, would otherwise say forever)."""
    if window.remaining_ms <= 0:
        return limit.window_seconds
    return max(1, min(limit.window_seconds, math.ceil(window.remaining_ms / 1000)))


def parse_proxies(entries: Iterable[str]) -> tuple[IPNetwork, ...]:
    """Addresses or CIDR blocks; raises ValueError naming an entry that is neither."""
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise ValueError(f"not an address or CIDR block: {entry.strip()!r}") from None
    return tuple(networks)


def client_address(peer: str, forwarded_for: Sequence[str], trusted: Sequence[IPNetwork]) -> str:
    """The client's address: the peer's, unless the peer is a trusted proxy; then the right-most
    `X-Forwarded-For` entry that is not a trusted proxy (entries further left are whatever the
    client wrote). A chain of only trusted proxies gives its left-most entry."""
    if not trusted or not _is_trusted(peer, trusted):
        return peer
    hops = [hop.strip() for value in forwarded_for for hop in value.split(",") if hop.strip()]
    chosen = peer
    for hop in reversed(hops):
        chosen = hop
        if not _is_trusted(hop, trusted):
            break
    return chosen


def _is_trusted(address: str, trusted: Sequence[IPNetwork]) -> bool:
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return False  # Not an address (e.g. "unknown", or a test client's name): not a proxy.
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        parsed = parsed.ipv4_mapped  # A dual-stack socket's view of an IPv4 peer.
    return any(parsed in network for network in trusted)


IPV6_SUBJECT_PREFIX = 64
"""One IPv6 /64 is one subscriber's network: counting each of its 2**64 addresses on its own
would let one guesser walk around the per-address limit."""


def address_subject(address: str) -> str:
    """What a per-address limit counts: an IPv4 address as it is, an IPv6 address by its /64."""
    if ":" not in address:
        return address  # IPv4, or no address at all: as it is, without parsing it per request
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if ip.version == 4:
        return address
    return str(ipaddress.ip_network(f"{ip}/{IPV6_SUBJECT_PREFIX}", strict=False))
