"""Dependencies the handlers ask for by name; built once in `create_app` and kept in app state."""

from __future__ import annotations

from typing import Any, NamedTuple

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide

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
    state = request.app.state
    visitor = Visitor(
        accept_language=request.headers.get("accept-language"),
        automation=request_automation(request.method, request.headers.get("user-agent")),
        address=ratelimit.address_subject(client_address(request)),
    )
    return Public(state.service, state.links, visitor)


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
