"""Dependencies the handlers ask for by name; built once in `create_app` and kept in app state."""

from __future__ import annotations

from typing import Any, NamedTuple, cast

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide
from litestar.types import HTTPScope, Scope

from prefill import ratelimit
from prefill.consent import truncate_ip
from prefill.links import LinkBuilder
from prefill.ratelimit import RateLimits
from prefill.scanners import request_automation
from prefill.services import PrefillService, Visitor


class Public(NamedTuple):
    """What a public page's handler works with: the use cases, the link builder, and who is
    asking. One dependency, not three: Litestar resolves sibling dependencies in an anyio task
    group per request, which cost more than the widget handler's own work (about a fifth of a
    widget request, profiled)."""

    service: PrefillService
    links: LinkBuilder
    visitor: Visitor


ServiceDep = NamedDependency[PrefillService]
PublicDep = NamedDependency[Public]


def provide_service(state: State) -> PrefillService:
    service: PrefillService = state.service
    return service


def provide_public(request: Request[object, object, State]) -> Public:
    return public_of(request.scope)


class PublicHeaders(NamedTuple):
    """The request headers a public route reads, as Litestar's `Headers` gives them: the first
    value of each, and every `X-Forwarded-For` line."""

    accept_language: str | None
    user_agent: str | None
    origin: str | None
    forwarded_for: list[str]


_FIRST_VALUE = (b"accept-language", b"user-agent", b"origin")


def public_headers(scope: Scope) -> PublicHeaders:
    """One pass over the raw headers (a fast route has no `Headers` object to ask)."""
    first: dict[bytes, str] = {}
    forwarded: list[str] = []
    for raw_name, value in scope["headers"]:
        name = raw_name.lower()
        if name == b"x-forwarded-for":
            forwarded.append(value.decode("latin-1"))
        elif name in _FIRST_VALUE and name not in first:
            first[name] = value.decode("latin-1")
    get = first.get
    return PublicHeaders(get(b"accept-language"), get(b"user-agent"), get(b"origin"), forwarded)


def public_of(scope: Scope, headers: PublicHeaders | None = None) -> Public:
    """`Public` for a request's scope (a fast route's or a handler's)."""
    # By key: State's attributes come from its __getattr__, after a formatted AttributeError.
    state = scope["litestar_app"].state
    headers = headers or public_headers(scope)
    peer = scope.get("client")
    policy: RateLimits = state["rate_policy"]
    address = ratelimit.client_address(
        peer[0] if peer else "", headers.forwarded_for, policy.trusted_proxies
    )
    visitor = Visitor(
        accept_language=headers.accept_language,
        automation=request_automation(cast("HTTPScope", scope)["method"], headers.user_agent),
        address=ratelimit.address_subject(address),
    )
    return Public(state["service"], state["links"], visitor)


def client_address(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    """The client's address: `X-Forwarded-For` is believed only from the trusted proxies
    (ratelimit.client_address), so that neither a proxy's address nor a forged header stands
    in for the client's, in a rate limit or in consent evidence."""
    policy: RateLimits = connection.app.state.rate_policy
    peer = connection.client.host if connection.client else ""
    forwarded = connection.headers.getall("x-forwarded-for", [])
    return ratelimit.client_address(peer, forwarded, policy.trusted_proxies)


def evidence_ip(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    """The client's address truncated for evidence (consent.truncate_ip)."""
    return truncate_ip(client_address(connection))


DEPENDENCIES = {
    "service": Provide(provide_service, sync_to_thread=False),
    "public": Provide(provide_public, sync_to_thread=False),
}
