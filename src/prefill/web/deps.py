"""Dependencies the handlers ask for by name; built once in `create_app` and kept in app state."""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide

from prefill import ratelimit
from prefill.links import LinkBuilder
from prefill.ratelimit import RateLimits
from prefill.scanners import request_automation
from prefill.services import PrefillService, Visitor

ServiceDep = NamedDependency[PrefillService]
LinksDep = NamedDependency[LinkBuilder]
VisitorDep = NamedDependency[Visitor]


def provide_service(state: State) -> PrefillService:
    service: PrefillService = state.service
    return service


def provide_links(state: State) -> LinkBuilder:
    links: LinkBuilder = state.links
    return links


def provide_visitor(request: Request[object, object, State]) -> Visitor:
    return Visitor(
        accept_language=request.headers.get("accept-language"),
        automation=request_automation(request.method, request.headers.get("user-agent")),
        address=client_address(request),
    )


def client_address(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    """The client's address for rate limits: `X-Forwarded-For` is believed only from the
    trusted proxies (ratelimit.client_address)."""
    policy: RateLimits = connection.app.state.rate_policy
    peer = connection.client.host if connection.client else ""
    if not policy.enabled:
        return peer
    forwarded = connection.headers.getall("x-forwarded-for", [])
    return ratelimit.client_address(peer, forwarded, policy.trusted_proxies)


DEPENDENCIES = {
    "service": Provide(provide_service, sync_to_thread=False),
    "links": Provide(provide_links, sync_to_thread=False),
    "visitor": Provide(provide_visitor, sync_to_thread=False),
}
