"""Dependencies the handlers ask for by name; built once in `create_app` and kept in app state."""

from __future__ import annotations

from litestar import Request
from litestar.datastructures import State
from litestar.di import NamedDependency, Provide

from prefill.links import LinkBuilder
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
    )


DEPENDENCIES = {
    "service": Provide(provide_service, sync_to_thread=False),
    "links": Provide(provide_links, sync_to_thread=False),
    "visitor": Provide(provide_visitor, sync_to_thread=False),
}
