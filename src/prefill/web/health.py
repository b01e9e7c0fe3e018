"""Liveness (the process answers) and readiness (Redis answers) for orchestrators."""

from __future__ import annotations

import msgspec
from litestar import Response, Router, get, head
from litestar.openapi.datastructures import ResponseSpec
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE
from litestar.types import Receive, Scope, Send

from prefill.store import StoreUnavailable
from prefill.web.deps import ServiceDep
from prefill.web.fast import FAST_ROUTE, Answer


class HealthOut(msgspec.Struct, frozen=True):
    status: str


LIVE = msgspec.json.encode(HealthOut(status="ok"))
_JSON = [(b"content-type", b"application/json")]


async def live_fast(scope: Scope, receive: Receive, send: Send) -> None:
    await Answer(LIVE, _JSON)(scope, receive, send)


@get(
    "/live",
    name="health_live",
    responses={200: ResponseSpec(HealthOut, description="Request fulfilled, document follows")},
    sync_to_thread=False,
    opt={FAST_ROUTE: live_fast},
)
def live() -> Answer:
    """The body encoded once; a fast route (web/fast.py)."""
    return Answer(LIVE, _JSON)


@get(
    "/ready",
    name="health_ready",
    responses={503: ResponseSpec(HealthOut, description="Redis is unavailable or read-only.")},
)
async def ready(service: ServiceDep) -> Response[HealthOut]:
    """Ready only while Redis answers and accepts writes (every disclosure is audited first): a
    load balancer then stops sending traffic that would all be refused."""
    try:
        await service.check_ready()
    except StoreUnavailable:
        return Response(
            HealthOut(status="redis unavailable"), status_code=HTTP_503_SERVICE_UNAVAILABLE
        )
    return Response(HealthOut(status="ok"), status_code=HTTP_200_OK)


@head("/live", name="health_live_head", include_in_schema=False, media_type="application/json")
async def live_head() -> None:
    """Load balancers and uptime checks often send HEAD: the same status, no body."""


@head("/ready", name="health_ready_head", include_in_schema=False, media_type="application/json")
async def ready_head(service: ServiceDep) -> Response[None]:
    try:
        await service.check_ready()
    except StoreUnavailable:
        return Response(None, status_code=HTTP_503_SERVICE_UNAVAILABLE)
    return Response(None, status_code=HTTP_200_OK)


health_router = Router(path="/health", route_handlers=[live, ready, live_head, ready_head])
